"""``python -m figures.make --table {6,7,8} --runs-dir runs/ --out DIR``: the paper's tables from run directories.

Table 6: NASWOT scores of every method's runs beside the published rows (table6.md/.csv/.tex, scores, plot).
Tables 7-8: loss surfaces of one seed per method at each LR step: a multi-panel figure, the VTK file behind
every panel (open in ParaView), a GIF per method across the steps, and a sharpness table. Surfaces are
stored under RUNS_DIR/surfaces/ and resumed when re-run.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from diversity.config import ScoreConfig
from figures.surfaces import make_surface_table
from figures.table6 import make_table6
from landscape.config import GridSpec
from training.cli import Parser, add_common_flags, log, resolve_device, run_cli

SC = ScoreConfig()


def build_parser() -> Parser:
    p = Parser(prog="python -m figures.make", description=__doc__.split("\n\n")[0])
    p.add_argument("--table", type=int, nargs="+", required=True, choices=(6, 7, 8), help="which tables to make")
    p.add_argument("--runs-dir", default="runs", help="folder of run directories [runs]")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--runs", type=int, default=5, help="Table 6: runs required per method [5]")
    p.add_argument("--milestone", type=int, default=None, help="Table 6: score ckpt_eXXX.pt of this epoch [final]")
    p.add_argument("--batches", type=int, default=5, help="Table 6: shared NASWOT batches per checkpoint [5]")
    p.add_argument("--batch-size", type=int, default=SC.batch_size, help=f"Table 6: images per batch N [{SC.batch_size}]")
    p.add_argument("--bn-mode", choices=("train", "eval"), default=SC.bn_mode, help="Table 6: BatchNorm mode [train]")
    p.add_argument("--steps", type=int, default=51, help="Tables 7-8: grid points per axis [51]")
    p.add_argument("--max-images", type=int, default=None, help="Tables 7-8: training images per point [all]")
    p.add_argument("--surface-seed", type=int, default=0, help="Tables 7-8: seed of the run drawn per method [0]")
    p.add_argument("--linear", action="store_true", help="Tables 7-8: plot loss instead of ln(loss + 0.1)")
    p.add_argument("--zmax", type=float, default=None, help="Tables 7-8: clip heights at this value")
    p.add_argument("--sharpness-images", type=int, default=512, help="Tables 7-8: images for the Hessian estimates [512]")
    add_common_flags(p, data=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    device = resolve_device(a.device)
    runs_dir, out = Path(a.runs_dir), Path(a.out)
    written: list[Path] = []
    for table in a.table:
        if table == 6:
            cfg = ScoreConfig(batch_size=a.batch_size, batches=a.batches, bn_mode=a.bn_mode)
            written += make_table6(runs_dir, out, cfg, a.runs, device, a.milestone, a.quiet)
            print((out / "table6.md").read_text())
        else:
            spec = GridSpec(xsteps=a.steps, ysteps=a.steps, max_images=a.max_images)
            written += make_surface_table(table, runs_dir, out, spec, device, a.surface_seed, not a.linear, a.zmax,
                                          a.sharpness_images, a.quiet)
            print((out / f"table{table}_sharpness.md").read_text())
    log(f"wrote {len(written)} files under {out}", a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
