"""``python -m figures.study --out-dir runs/``: the whole study behind Tables 6-8, in order, resumable.

Stages: the scratch teacher; every method x seed (milestone checkpoints at each LR decay); the loss surfaces
of one seed per method at each milestone; the NASWOT scores (Table 6); the surface tables (7-8) with
sharpness numbers. It prints what it will run with an ETA from a throughput probe first, shows overall
progress, and skips what is already done when re-run. ``--demo`` runs a small version on CPU on the embedded
data (about 10 minutes on 2 cores); the default is the paper's full size (use --device cuda).
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from diversity.config import ScoreConfig
from figures.jobs import Job, run_jobs
from figures.plan import PRESETS, StudySpec
from figures.probe import Rates, probe
from figures.surfaces import ensure_surface, make_surface_table, surface_path
from figures.table6 import make_table6
from figures.train_stage import training_jobs
from landscape.config import GridSpec
from landscape.store import load_surface
from training.cli import Parser, add_common_flags, log, resolve_device, run_cli
from training.data import load_split


def build_parser() -> Parser:
    p = Parser(prog="python -m figures.study", description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", default="runs", help="run directories, surfaces and figures go here [runs]")
    p.add_argument("--demo", action="store_true", help="the small CPU version on the embedded data (same as --preset demo)")
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="full = the paper (ResNet-56, 160 epochs, 5 seeds, 51x51 on the whole train split); demo = "
                        "about 10 min on 2 CPU cores; micro = seconds, for tests [full]")
    p.add_argument("--dataset", default=None, help="dataset for the full study (cifar10, cifar100, npz) [cifar10]")
    p.add_argument("--seeds", type=int, default=None, help="seeds per method (fewer than the preset's to save time)")
    p.add_argument("--figures-dir", default=None, help="where the tables and figures go [OUT_DIR/figures]")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the ETA, run nothing")
    add_common_flags(p)
    return p


def study_spec(a) -> StudySpec:
    spec = PRESETS["demo" if a.demo else (a.preset or "full")]
    if a.dataset:
        spec = replace(spec, dataset=a.dataset)
    if a.data_dir:
        spec = replace(spec, data_dir=a.data_dir)
    if a.seeds:
        spec = replace(spec, seeds=tuple(range(a.seeds)))
    return spec


def grid_of(spec: StudySpec) -> GridSpec:
    return GridSpec(xsteps=spec.surface_steps, ysteps=spec.surface_steps, max_images=spec.surface_max_images)


def score_config(spec: StudySpec) -> ScoreConfig:
    return ScoreConfig(batch_size=spec.score_batch_size, batches=spec.score_batches)


def _surface_done(path: Path) -> bool:
    return path.is_file() and load_surface(path).done


def analysis_jobs(spec: StudySpec, runs_dir: Path, figs: Path, rates: Rates, device) -> list[Job]:
    grid = grid_of(spec)
    n_surf = spec.surface_max_images or len(load_split(spec.dataset, "train", spec.data_dir))
    seed = spec.surface_seed
    jobs = []
    for method in spec.surface_methods:
        for e in spec.surface_epochs:
            path = surface_path(runs_dir, method, seed, e)
            jobs.append(Job("surface", path.stem, 0.6 * grid.xsteps * grid.ysteps * n_surf / rates.forward_images_per_s,
                            lambda p=path: _surface_done(p),
                            lambda m=method, ep=e: ensure_surface(runs_dir, m, seed, ep, grid, device)))
    n_ckpt = len(spec.methods) * len(spec.seeds)
    cfg = score_config(spec)
    jobs.append(Job("score", "table6", n_ckpt * cfg.batches * cfg.batch_size / rates.train_images_per_s + 5,
                    lambda: (figs / "table6.md").is_file(),
                    lambda: make_table6(runs_dir, figs, cfg, len(spec.seeds), device, quiet=True)))
    # 9 panels x ~30 Hessian-vector products, each about 4 training steps' work, plus rendering.
    sharp = 9 * 30 * 4 * spec.sharpness_images / rates.train_images_per_s
    for table in (7, 8):
        jobs.append(Job("tables", f"table{table}", sharp + 20, lambda t=table: (figs / f"table{t}.png").is_file(),
                        lambda t=table: make_surface_table(t, runs_dir, figs, grid, device, seed,
                                                           sharpness_images=spec.sharpness_images, quiet=True)))
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    spec = study_spec(a)
    device = resolve_device(a.device)
    runs_dir = Path(a.out_dir)
    figs = Path(a.figures_dir) if a.figures_dir else runs_dir / "figures"
    log(f"study: {spec.model} (width {spec.width}), {len(spec.methods)} methods x {len(spec.seeds)} seeds, "
        f"{spec.epochs} epochs (LR steps after {list(spec.lr_milestones)}), surfaces {spec.surface_steps}x"
        f"{spec.surface_steps} at epochs {list(spec.surface_epochs)}, device {device}", a.quiet)
    rates = probe(spec.model, spec.width, device)
    log(f"probe: {rates.train_images_per_s:.0f} training img/s, {rates.forward_images_per_s:.0f} inference img/s", a.quiet)
    jobs = training_jobs(spec, runs_dir, rates, str(device)) + analysis_jobs(spec, runs_dir, figs, rates, device)
    run_jobs(jobs, a.quiet, a.dry_run)
    if not a.dry_run:
        print(f"tables and figures: {figs}")
        for name in ("table6.md", "table7_sharpness.md", "table8_sharpness.md"):
            if (figs / name).is_file():
                print((figs / name).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
