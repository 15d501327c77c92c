"""The Tables 6-8 study's jobs (figures.analysis.plan): the scratch teacher (unless the study names one), one job
per method that trains all of that method's seeds (train_method_seeds), one per loss surface, the NASWOT scores
(Table 6) and the surface tables (7-8). A job is done when its outputs exist, so a re-run skips it."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from figures.analysis.plan import TEACHER_RUN, StudySpec, run_name
from figures.analysis.surfaces import ensure_surface, make_surface_table, surface_path
from figures.analysis.table6 import make_table6
from figures.jobs import Job, run_finished, table_job
from figures.probe import Rates, epoch_seconds
from landscape.record import load_surface
from training.config import RuntimeOptions, TrainConfig
from training.data.datasets import checkpoint_split
from training.engine.fit import fit
from training.engine.packed import fit_seeds
from training.objectives import method_spec
from training.store.rundir import milestone_name


def train_config(spec: StudySpec, method: str, seed: int, teacher: Path | None) -> TrainConfig:
    return TrainConfig(method=method, model=spec.model, width=spec.width, dataset=spec.dataset, data_dir=spec.data_dir,
                       max_train_images=spec.max_train_images, teacher=str(teacher) if teacher else None, seed=seed,
                       epochs=spec.epochs, lr_milestones=spec.lr_milestones, amp_bf16=spec.bf16, tf32=spec.tf32,
                       compile=spec.compile, cuda_graphs=spec.cuda_graphs)


def teacher_checkpoint(runs_dir: Path, spec: StudySpec) -> Path:
    """The study's teacher: ``spec.teacher`` when it names a checkpoint, else the scratch teacher the study trains."""
    return Path(spec.teacher) if spec.teacher else runs_dir / TEACHER_RUN / milestone_name(spec.epochs)


def train_method_seeds(spec: StudySpec, method: str, seeds: Sequence[int], runs_dir: Path, teacher: Path | None,
                       device: str) -> list[Path]:
    """Train ``method`` for every seed into RUNS_DIR/METHOD-s{seed}: packed into one process with one forward/backward
    per step (training.engine.packed) when ``spec.pack_seeds`` and not ``spec.compile``, else one after another.
    Finished
    runs are skipped and an interrupted one resumes from its last.pt; a packed restart packs all ``seeds`` again
    (training.engine.packed leaves the finished ones alone), since each run records the pack it started in and resumes
    only
    in one of that size. Returns the run directories."""
    opts = RuntimeOptions(device=device, quiet=True)
    outs = [runs_dir / run_name(method, seed) for seed in seeds]
    todo = [seed for seed, out in zip(seeds, outs) if not run_finished(out, spec.epochs)]
    if spec.pack_seeds and not spec.compile and len(seeds) > 1:
        if todo:
            fit_seeds(train_config(spec, method, seeds[0], teacher), seeds, str(runs_dir / run_name(method, "{seed}")),
                      opts)
    else:
        for seed in todo:
            fit(train_config(spec, method, seed, teacher), runs_dir / run_name(method, seed), opts)
    return outs


def training_jobs(spec: StudySpec, runs_dir: Path, rates: Rates, device: str) -> list[Job]:
    """The teacher job (stage "teacher", absent when the study names a teacher), then one "train" job per method."""
    config = train_config(spec, "scratch", 0, None).to_json()
    n_train = len(checkpoint_split(config, "train", spec.max_train_images))
    n_test = len(checkpoint_split(config, "test"))
    epoch_s = epoch_seconds(rates, n_train, n_test)
    teacher = teacher_checkpoint(runs_dir, spec)
    jobs = []
    if not spec.teacher:
        out = runs_dir / TEACHER_RUN
        jobs.append(Job("teacher", out.name, spec.epochs * epoch_s, lambda: run_finished(out, spec.epochs),
                        lambda: fit(train_config(spec, "scratch", spec.teacher_seed, None), out,
                                    RuntimeOptions(device=device, quiet=True))))
    for method in spec.methods:
        kd = method_spec(method).objective != "ce"
        outs = [runs_dir / run_name(method, seed) for seed in spec.seeds]
        seeds = ",".join(str(s) for s in spec.seeds)
        jobs.append(Job(
            stage="train", name=f"{method}-s{{{seeds}}}",
            cost=len(outs) * spec.epochs * epoch_s * (1.4 if kd else 1.0),  # the teacher's forward costs ~1/3 step
            done=lambda outs=outs: all(run_finished(o, spec.epochs) for o in outs),
            run=lambda m=method, kd=kd: train_method_seeds(spec, m, spec.seeds, runs_dir, teacher if kd else None,
                                                           device)))
    return jobs


def _surface_done(path: Path) -> bool:
    return path.is_file() and load_surface(path).done


def analysis_jobs(spec: StudySpec, runs_dir: Path, figs: Path, rates: Rates, device: torch.device) -> list[Job]:
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
    jobs.append(table_job(figs, 6, n_ckpt * (cfg.batches + 1) * cfg.batch_size / rates.train_images_per_s + 5,
                          lambda: make_table6(runs_dir, figs, cfg, len(spec.seeds), device, quiet=True), stage="score"))
    # Per panel at most max_iters + 2 sketch + max_samples Hessian-vector products (about a third of that when
    # the trace converges), each about 4 training steps' work, plus rendering; Table 8 reuses the Hessian numbers
    # of the rows it shares with Table 7.
    h = spec.sharpness
    per_panel = (h.max_iters + 2 * h.sketch + h.max_samples) / 3 * 4 * h.images / rates.train_images_per_s
    return jobs + [table_job(figs, t, panels * per_panel + 20, lambda t=t: make_surface_table(
        t, runs_dir, figs, grid, device, seed, sharpness=spec.sharpness, quiet=True)) for t, panels in ((7, 9), (8, 6))]


def surface_study_jobs(spec: StudySpec, tables: set[int], runs_dir: Path, figs: Path, rates: Rates,
                       device: torch.device) -> list[Job]:
    """The Tables 6-8 jobs that ``tables`` needs: training, then surfaces (7, 8), scores (6) and the tables."""
    if not tables & {6, 7, 8}:
        return []
    wanted = {f"table{t}" for t in tables}
    jobs = training_jobs(spec, runs_dir, rates, str(device))
    for j in analysis_jobs(spec, runs_dir, figs, rates, device):
        if j.name in wanted or (j.stage == "surface" and tables & {7, 8}):
            jobs.append(j)
    return jobs
