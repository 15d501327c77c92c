"""python -m figures.make --table {1,...,8} --runs-dir runs/ --out DIR [--preset demo]: the paper's Tables 1-8 from
the runs python -m figures.study wrote under RUNS_DIR. Each table's files (Markdown, CSV, LaTeX and JSON, every
cell the paper prints beside ours) are listed in its tableN.manifest.json, and its Markdown is printed.

Tables 1-3 (pruning x KD, CIFAR-100; Table 1 L1-norm filter pruning of ResNet-56/110, Table 2 network slimming of
VGG-19, ResNet-56 and DenseNet-40, Table 3 weight pruning of ResNet-110): from the schedule directories under
RUNS_DIR/prune/ (figures.study --tables 1 2 3). Per pruning setting the rows Unpruned, Finetuned / Pre-Distill,
Post-Distill, Pre-Post, Self-Distill and Surplus; columns Baseline / Label KD / Feature KD with gains, parameters
and MACs of the pruned networks.

Tables 4-5 (augmentation x KD, CIFAR-100; Table 4 AutoAugment on PyramidNet-200 alpha 300, Table 5 CutMix on
PyramidNet-110 alpha 64 and PyramidNet-200 alpha 240): from RUNS_DIR/augment/ (figures.study --tables 4 5). Scratch
and the augmentation-only rows, the teacher x student matrix with Label / Feature KD columns and gains over
Scratch, the sum of separate gains and the synergy, one block per network. Tables 1-5 read the runs' JSON and
metrics only: no device is needed.

Table 6 (CIFAR-10, ResNet-56): NASWOT scores of the final checkpoint (or --milestone E) of every method's runs
directly under RUNS_DIR beside the published rows, with the per-run scores (scores.json / scores.csv) and
table6.png.
Tables 7-8: filter-normalized loss surfaces of one seed per method at each LR step (Table 7 Scratch, CutMix,
Distill; Table 8 adds Feature KD and CutMix+Feature KD): a multi-panel figure, the VTK file behind every panel
(open in ParaView), a GIF per method across the steps, a Hessian table and a flatness table. Surfaces are stored
under RUNS_DIR/surfaces/ and resumed when re-run.

--preset names the figures.study preset the runs came from: for Tables 1-5 its networks (or stand-ins) and seeds,
for Tables 6-8 its sizes (grid steps, images, NASWOT batches and batch size, sharpness images, runs per method),
so the tables of runs made by python -m figures.study --preset demo come out with --preset demo; each size flag
overrides its preset value. At full size (the default) the runs must have been trained on the real dataset, and
for Tables 6-8 a CPU is refused unless --allow-cpu.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from diversity.config import BN_MODES, ScoreConfig
from figures.analysis.hessian import HessianSettings
from figures.analysis.plan import PRESETS, StudySpec, require_gpu
from figures.analysis.surfaces import make_surface_table
from figures.analysis.table6 import make_table6
from figures.augment.plan import AUGMENT_NETWORKS, AUGMENT_PRESETS, with_networks
from figures.augment.tables import make_augment_table
from figures.captions import refuse_embedded_subset
from figures.jobs import manifest_path, with_manifest
from figures.pruning.plan import PRUNE_PRESETS
from figures.pruning.tables import make_pruning_table
from landscape.config import GridSpec
from training.cli.common import (
    GRID_STEPS,
    SEED_COUNT,
    Parser,
    add_common_flags,
    nonempty,
    nonnegative_int,
    positive_float,
    positive_int,
    run_cli,
)
from training.log import log
from training.runtime.device import resolve_device
from training.store.rundir import CONFIG, read_config


def build_parser() -> Parser:
    p = Parser(prog="python -m figures.make", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=int, nargs="+", required=True, choices=(1, 2, 3, 4, 5, 6, 7, 8),
                   help="which tables to make: 1-3 pruning x KD, 4-5 augmentation x KD, 6 NASWOT scores, 7-8 loss "
                        "surfaces")
    p.add_argument("--runs-dir", type=nonempty, default="runs", help="folder of run directories [runs]")
    p.add_argument("--out", type=nonempty, required=True, help="output folder")
    p.add_argument("--preset", choices=list(PRESETS), default="full",
                   help="the figures.study preset the runs came from: Tables 1-5 take its networks and seeds, "
                        "Tables 6-8 its sizes: "
                        + "; ".join(f"{name} = {preset_sizes(spec)}" for name, spec in PRESETS.items()) + " [full]")
    p.add_argument("--allow-cpu", action="store_true", help="run the full-size Tables 6-8 on the CPU anyway")
    p.add_argument("--runs", type=SEED_COUNT, default=None,
                   help="Table 6: runs required per method [preset: 5]; Tables 1-5: seeds per cell, seeds 0..N-1 "
                        "[preset: full 3, demo and micro 1]")
    p.add_argument("--augment-networks", choices=list(AUGMENT_NETWORKS), default=None,
                   help="Tables 4-5: the networks the study ran (figures.study --augment-networks) [paper]")
    p.add_argument("--milestone", type=positive_int, default=None, help="Table 6: score ckpt_eXXX.pt of this epoch "
                                                                        "[final]")
    p.add_argument("--batches", type=positive_int, default=None, help="Table 6: shared NASWOT batches per checkpoint "
                                                                      "[preset: 5]")
    p.add_argument("--batch-size", type=positive_int, default=None, help="Table 6: images per batch N [preset: 128]")
    p.add_argument("--bn-mode", choices=BN_MODES, default=ScoreConfig.bn_mode, help="Table 6: BatchNorm mode [train]")
    p.add_argument("--steps", type=GRID_STEPS, default=None, help="Tables 7-8: grid points per axis, at least 3 "
                                                                  "[preset: 51]")
    p.add_argument("--max-images", type=positive_int, default=None,
                   help="Tables 7-8: training images per surface point [preset: all]")
    p.add_argument("--surface-seed", type=nonnegative_int, default=None, help="Tables 7-8: seed of the run drawn per "
                                                                              "method [0]")
    p.add_argument("--linear", action="store_true", help="Tables 7-8: plot loss instead of ln(loss + 0.1)")
    p.add_argument("--zmax", type=positive_float, default=None, help="Tables 7-8: clip the loss at this value")
    p.add_argument("--sharpness-images", type=positive_int, default=None,
                   help="Tables 7-8: training images behind the Hessian numbers [preset: 512]")
    add_common_flags(p, data=False)
    return p


def preset_sizes(spec: StudySpec) -> str:
    return (f"{spec.surface_steps}x{spec.surface_steps} grid on {spec.surface_max_images or 'all'} images, "
            f"{spec.score_batches} NASWOT batch(es) of {spec.score_batch_size}, {spec.sharpness.images} sharpness "
            f"images, {len(spec.seeds)} runs per method")


def sized(a, spec: StudySpec) -> tuple[ScoreConfig, GridSpec, int, int, HessianSettings]:
    """Score config, grid, runs per method, surface seed and Hessian settings: each flag, else its preset value."""
    spec = replace(
        spec,
        surface_steps=a.steps or spec.surface_steps,
        surface_max_images=a.max_images or spec.surface_max_images,
        score_batch_size=a.batch_size or spec.score_batch_size,
        score_batches=a.batches or spec.score_batches,
        sharpness=replace(spec.sharpness, images=a.sharpness_images or spec.sharpness.images),
    )
    seed = spec.surface_seed if a.surface_seed is None else a.surface_seed
    return spec.score_config(a.bn_mode), spec.grid(), a.runs or len(spec.seeds), seed, spec.sharpness


def require_real_data_runs(runs_dir: Path) -> None:
    """Full-size tables from runs trained on the embedded subset would be a silent toy result: refuse them."""
    run_dirs = [p.parent for p in sorted(runs_dir.glob(f"*/{CONFIG}"))]
    refuse_embedded_subset({d: read_config(d, required=True) for d in run_dirs})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.steps is not None and a.steps < 3:
        parser.error(f"argument --steps: {a.steps} must be at least 3 (a surface needs a grid)")
    cfg, grid, runs, seed, sharpness = sized(a, PRESETS[a.preset])
    device = resolve_device(a.device)
    runs_dir, out = Path(a.runs_dir), Path(a.out)
    if a.preset == "full" and set(a.table) & {6, 7, 8}:
        require_gpu(device, a.allow_cpu, "figures.make --preset full")
        require_real_data_runs(runs_dir)
    pspec, aspec = PRUNE_PRESETS[a.preset], with_networks(AUGMENT_PRESETS[a.preset], a.augment_networks)
    if a.runs:
        pspec, aspec = (replace(s, seeds=tuple(range(a.runs))) for s in (pspec, aspec))
    written: list[Path] = []
    for table in a.table:
        if table in (1, 2, 3):
            written += with_manifest(manifest_path(out, f"table{table}"),
                                     lambda t=table: make_pruning_table(t, runs_dir, out, pspec))
            print((out / f"table{table}.md").read_text())
        elif table in (4, 5):
            written += with_manifest(manifest_path(out, f"table{table}"),
                                     lambda t=table: make_augment_table(t, runs_dir, out, aspec))
            print((out / f"table{table}.md").read_text())
        elif table == 6:
            written += with_manifest(manifest_path(out, "table6"),
                                     lambda: make_table6(runs_dir, out, cfg, runs, device, a.milestone, a.quiet))
            print((out / "table6.md").read_text())
        else:
            written += with_manifest(manifest_path(out, f"table{table}"), lambda t=table: make_surface_table(
                t, runs_dir, out, grid, device, seed, not a.linear, a.zmax, sharpness, a.quiet))
            for kind in ("hessian", "flatness"):
                print((out / f"table{table}_{kind}.md").read_text())
    log(f"wrote {len(written)} files under {out}", a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
