"""figures.make's help describes every table it makes, Tables 1-8, and where each reads its runs."""
from figures.make import build_parser


def test_help_describes_tables_1_to_8():
    text = build_parser().format_help()
    assert "--table {1,...,8}" in text and "{1,2,3,4,5,6,7,8}" in text
    for needle in ("Tables 1-3 (pruning x KD", "RUNS_DIR/prune/", "Tables 4-5 (augmentation x KD", "RUNS_DIR/augment/",
                   "Table 6 (CIFAR-10", "Tables 7-8", "RUNS_DIR/surfaces/", "Tables 1-5 take its networks and seeds"):
        assert needle in " ".join(text.split()), needle
