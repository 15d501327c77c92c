"""python -m figures.claims --runs-dir runs/ --out DIR [--preset demo]: the paper's claims tested on the study's runs,
and the report page.

Writes DIR/claims.md and DIR/claims.json (one row per claim: its source, the quantity measured, our estimate with a
Student-t confidence interval over seeds, paired where the runs pair by seed, the paper's number where it printed
one, and a verdict: supported, contradicted, inconclusive at the stated level, or not run when the claim's runs are
missing) and DIR/report.html (one self-contained page: the claims, every table beside the paper's cells with the
differences highlighted, the diversity plot, every surface of Tables 7-8 as an interactive 3-D view, the static
figures). Reads only what the study wrote (run directories, tables, surfaces, Hessian numbers): no device, no
training. --preset and --runs name the study the runs came from, as for figures.make. Definitions of every measure
and their weaknesses: docs/reference.md, "Claims and their measures".
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from figures.analysis.plan import PRESETS
from figures.augment.plan import AUGMENT_NETWORKS
from figures.report.catalogue import LEVEL
from figures.report.page import claims_and_report
from training.cli.common import SEED_COUNT, Parser, nonempty, run_cli
from training.errors import UserError
from training.log import log


def build_parser() -> Parser:
    p = Parser(
        prog="python -m figures.claims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs-dir", type=nonempty, default="runs", help="the study's --out-dir [runs]")
    p.add_argument("--out", type=nonempty, required=True, help="output folder for claims.md, claims.json, report.html")
    p.add_argument("--tables-dir", type=nonempty, default=None,
                   help="where the study wrote its tables and figures [RUNS_DIR/figures]")
    p.add_argument(
        "--preset", choices=list(PRESETS), default="full", help="the figures.study preset of the runs [full]"
    )
    p.add_argument("--runs", type=SEED_COUNT, default=None,
                   help="Tables 1-5: seeds per cell, seeds 0..N-1 (figures.study --seeds) [the preset's]")
    p.add_argument("--augment-networks", choices=list(AUGMENT_NETWORKS), default=None,
                   help="Tables 4-5: the networks the study ran (figures.study --augment-networks) [paper]")
    p.add_argument("--level", type=float, default=LEVEL,
                   help="confidence of the intervals, between 0 and 1 (Table 6's claim keeps its stated 99%%) [0.95]")
    p.add_argument("--quiet", action="store_true", help="no logs on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if not 0 < a.level < 1:
        raise UserError(f"--level {a.level}: give a confidence between 0 and 1, e.g. 0.95")
    runs_dir = Path(a.runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} is not a folder; give the --out-dir of python -m figures.study")
    tables_dir = Path(a.tables_dir) if a.tables_dir else runs_dir / "figures"
    paths = claims_and_report(runs_dir, tables_dir, Path(a.out), a.preset, a.runs, a.augment_networks, a.level)
    print(paths[0].read_text())
    log(f"wrote {', '.join(str(p) for p in paths)}", a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
