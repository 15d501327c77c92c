"""Every CLI's --help reads on its own in a fresh clone: no citations of the team's design notes (a clone has
none), no literal backquotes, and every flag explained."""
from __future__ import annotations

import importlib

import pytest

CLIS = ["training.train", "training.prune", "training.prune_schedule", "landscape.plot", "diversity.score",
        "figures.make", "figures.study", "figures.claims"]


@pytest.mark.parametrize("module", CLIS)
def test_help_is_self_contained(module, capsys):
    parser = importlib.import_module(module).build_parser()
    text = parser.format_help()
    assert "DESIGN" not in text and "§" not in text, text
    assert "`" not in text, text
    assert "shared/" not in text, text
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 8, f"{module} {action.option_strings} has no help text"


def test_readme_lists_every_landscape_flag():
    import re
    from pathlib import Path

    from landscape.plot import build_parser

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    flags = [f for a in build_parser()._actions for f in a.option_strings if f.startswith("--") and f != "--help"]
    missing = [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", readme)]
    assert not missing, f"README does not mention {missing}"
