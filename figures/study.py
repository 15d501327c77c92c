"""python -m figures.study --out-dir runs/ --data-dir DIR --device cuda: the whole study behind Tables 6-8, in order, resumable.

Stages: the scratch teacher (or the checkpoint --teacher names); every method x seed (milestone checkpoints at
each LR decay); the loss surfaces of one seed per method at each milestone; the NASWOT scores (Table 6); the
surface tables (7-8) with Hessian and flatness numbers. It prints what it will run with an ETA from a
throughput probe first, shows overall progress, and skips what is already done when re-run. --preset demo
(or --demo) runs a small version on the CPU on the embedded data (about 7 minutes on 2 cores); the default is
the paper's full size, which needs the real dataset (--data-dir) and a GPU (or --allow-cpu).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from figures.jobs import Job, manifest_path, outputs_complete, run_jobs, with_manifest
from figures.plan import PRESETS, StudySpec, require_gpu
from figures.probe import Rates, probe
from figures.surfaces import ensure_surface, make_surface_table, surface_path
from figures.table6 import make_table6
from figures.train_stage import teacher_checkpoint, train_config, training_jobs
from landscape.store import load_surface
from training.cli import Parser, add_common_flags, log, positive_int, resolve_device, run_cli
from training.data import checkpoint_split
from training.errors import UserError


def build_parser() -> Parser:
    p = Parser(prog="python -m figures.study", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default="runs", help="run directories, surfaces and figures go here [runs]")
    p.add_argument("--demo", action="store_true", help="the small CPU version on the embedded data (same as --preset demo)")
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="full = the paper (ResNet-56, 160 epochs, 5 seeds, 51x51 on the whole train split); demo = "
                        "about 7 min on 2 CPU cores; micro = seconds, for tests [full]")
    p.add_argument("--dataset", default=None, help="dataset for the full study (cifar10, cifar100, npz) [cifar10]")
    p.add_argument("--teacher", default=None,
                   help="an existing teacher checkpoint for the KD methods [train a scratch teacher as "
                        "OUT_DIR/teachers/scratch-teacher]")
    p.add_argument("--seeds", type=positive_int, default=None, help="seeds per method (fewer than the preset's to save time)")
    p.add_argument("--figures-dir", default=None, help="where the tables and figures go [OUT_DIR/figures]")
    p.add_argument("--allow-cpu", action="store_true", help="run the full-size study on the CPU anyway")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the ETA, run nothing")
    add_common_flags(p)
    return p


def preset_name(a) -> str:
    return "demo" if a.demo else (a.preset or "full")


def study_spec(a) -> StudySpec:
    spec = PRESETS[preset_name(a)]
    if a.dataset:
        spec = replace(spec, dataset=a.dataset)
    if a.data_dir:
        spec = replace(spec, data_dir=a.data_dir)
    if a.seeds:
        spec = replace(spec, seeds=tuple(range(a.seeds)))
    if a.teacher:
        if not Path(a.teacher).is_file():
            raise UserError(f"--teacher {a.teacher} is not a file; give an orthokd checkpoint (e.g. "
                            "OUT_DIR/teachers/scratch-teacher/ckpt_e160.pt) or leave --teacher out to train one")
        spec = replace(spec, teacher=a.teacher)
    return spec


def _surface_done(path: Path) -> bool:
    return path.is_file() and load_surface(path).done


def analysis_jobs(spec: StudySpec, runs_dir: Path, figs: Path, rates: Rates, device) -> list[Job]:
    """Surfaces, Table 6 and Tables 7-8; a table job is done when its manifest and every file it lists exist."""
    grid = spec.grid()
    n_surf = spec.surface_max_images or len(checkpoint_split(train_config(spec, "scratch", 0, None).to_json(), "train"))
    seed = spec.surface_seed
    jobs = []
    for method in spec.surface_methods:
        for e in spec.surface_epochs:
            path = surface_path(runs_dir, method, seed, e)
            jobs.append(Job("surface", path.stem, 0.6 * grid.xsteps * grid.ysteps * n_surf / rates.forward_images_per_s,
                            lambda p=path: _surface_done(p),
                            lambda m=method, ep=e: ensure_surface(runs_dir, m, seed, ep, grid, device)))
    n_ckpt = len(spec.methods) * len(spec.seeds)
    cfg = spec.score_config()
    table6 = manifest_path(figs, "table6")
    jobs.append(Job("score", "table6", n_ckpt * cfg.batches * cfg.batch_size / rates.train_images_per_s + 5,
                    lambda: outputs_complete(table6),
                    lambda: with_manifest(table6, lambda: make_table6(runs_dir, figs, cfg, len(spec.seeds), device,
                                                                     quiet=True))))
    # Per panel at most max_iters + 2 sketch + max_samples Hessian-vector products (about a third of that when
    # the trace converges), each about 4 training steps' work, plus rendering; Table 8 reuses the Hessian numbers
    # of the rows it shares with Table 7.
    h = spec.sharpness
    per_panel = (h.max_iters + 2 * h.sketch + h.max_samples) / 3 * 4 * h.images / rates.train_images_per_s
    for table, panels in ((7, 9), (8, 6)):
        manifest = manifest_path(figs, f"table{table}")
        jobs.append(Job("tables", f"table{table}", panels * per_panel + 20, lambda m=manifest: outputs_complete(m),
                        lambda t=table, m=manifest: with_manifest(m, lambda: make_surface_table(
                            t, runs_dir, figs, grid, device, seed, sharpness=spec.sharpness, quiet=True))))
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    spec = study_spec(a)
    device = resolve_device(a.device)
    if preset_name(a) == "full":
        if spec.data_dir is None:
            raise UserError("the full-size study needs the real dataset, not the embedded 5,000-image subset: pass "
                            "--data-dir DIR (torchvision's CIFAR-10 folder), or use --preset demo or micro")
        require_gpu(device, a.allow_cpu, "the full-size study")
    runs_dir = Path(a.out_dir)
    figs = Path(a.figures_dir) if a.figures_dir else runs_dir / "figures"
    log(f"study: {spec.model} (width {spec.width}), {len(spec.methods)} methods x {len(spec.seeds)} seeds, "
        f"{spec.epochs} epochs (LR steps after {list(spec.lr_milestones)}), surfaces {spec.surface_steps}x"
        f"{spec.surface_steps} at epochs {list(spec.surface_epochs)}, teacher {teacher_checkpoint(runs_dir, spec)}"
        f"{'' if spec.teacher else ' (trained first)'}, device {device}", a.quiet)
    rates = probe(spec.model, spec.width, device)
    log(f"probe: {rates.train_images_per_s:.0f} training img/s, {rates.forward_images_per_s:.0f} inference img/s", a.quiet)
    jobs = training_jobs(spec, runs_dir, rates, str(device)) + analysis_jobs(spec, runs_dir, figs, rates, device)
    run_jobs(jobs, a.quiet, a.dry_run)
    if not a.dry_run:
        print(f"tables and figures: {figs}")
        for name in ("table6.md", *(f"table{t}_{k}.md" for t in (7, 8) for k in ("hessian", "flatness"))):
            if (figs / name).is_file():
                print((figs / name).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
