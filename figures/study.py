"""python -m figures.study --out-dir runs/ --data-dir DIR --device cuda [--tables 1 2 3 6 7 8]: the studies behind
the paper's tables, in order, resumable.

Tables 1-3 (pruning x KD, CIFAR-100): per network a scratch teacher, the initial trainings (scratch, label KD,
feature KD; sparsity-trained for Table 2), then per pruning setting the five schedules (figures.pruning.plan) and the
tables (figures.pruning.tables). Tables 4-5 (augmentation x KD, CIFAR-100; Table 4 PyramidNet-200 alpha 300, Table 5
PyramidNet-110 alpha 64 and PyramidNet-200 alpha 240): per network teachers without and with AutoAugment / CutMix,
then the baselines and the teacher x student matrix (figures.augment.plan). Tables 6-8 (CIFAR-10) as follows.

Stages: the scratch teacher (or the checkpoint --teacher names); every method x seed (milestone checkpoints at
each LR decay); the loss surfaces of one seed per method at each milestone; the NASWOT scores (Table 6); the
surface tables (7-8) with Hessian and flatness numbers; last, the paper's claims tested on the runs (claims.md,
claims.json) and report.html beside the tables (figures.claims). It prints what it will run with an ETA from a
throughput probe first, shows overall progress, and skips what is already done when re-run. --preset demo
(or --demo) runs a small version on the CPU on the embedded data (about 6 minutes on 2 cores); the default is
the paper's full size, which needs the real dataset (--data-dir) and a GPU (or --allow-cpu).

--executor local runs the jobs as subprocesses through submitit (one job per group of --gpus-per-job GPUs on a node
with several); --executor slurm submits them as Slurm job arrays. Stages in order: teacher, one job per method (all
its seeds), one job per surface, then the tables in one job, each stage submitted once the previous one has
succeeded (this command waits for them); logs under --log-dir; a re-run of the same command skips finished jobs
and resumes killed ones from last.pt; a job that reaches --time-limit is requeued by submitit and resumes.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from diversity.config import BN_MODES, ScoreConfig
from figures.analysis.plan import PRESETS, StudySpec, require_gpu, table_hours_line
from figures.analysis.stage import surface_study_jobs, teacher_checkpoint
from figures.augment.plan import AUGMENT_NETWORKS, AUGMENT_PRESETS, AugmentStudySpec, with_networks
from figures.augment.stage import augment_jobs
from figures.executor import EXECUTORS, executor_settings, job_device, remote_call, submitit_runner
from figures.jobs import Job, run_in_order, run_jobs
from figures.probe import PROBE_CACHE, cached_rates, probe
from figures.pruning.plan import L1_SKIP, PRUNE_PRESETS, SLIM_RESNETS, PruneStudySpec
from figures.pruning.stage import prune_jobs
from figures.report.page import claims_and_report
from training.cli.common import SEED_COUNT, Parser, add_common_flags, nonempty, positive_int, run_cli
from training.data.autoaugment import HOST_AUGMENTS
from training.data.datasets import DATASETS, NORMALIZATIONS, load_split
from training.errors import UserError
from training.log import log
from training.models.resnet import SHORTCUTS
from training.store.checkpoint import load_checkpoint

TABLES = (1, 2, 3, 4, 5, 6, 7, 8)
DEFAULT_TABLES = (6, 7, 8)
STAGES = ("teacher", "train", "prune", "surface", "score", "tables")  # the order the jobs run in


def build_parser() -> Parser:
    p = Parser(
        prog="python -m figures.study", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out-dir", type=nonempty, default="runs", help="run directories, surfaces and figures go here "
                                                                    "[runs]")
    p.add_argument("--demo", action="store_true", help="the small CPU version on the embedded data (same as --preset "
                                                       "demo)")
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="full = the paper (ResNet-56, 160 epochs, 5 seeds, 51x51 on the whole train split); demo = "
                        "about 6 min on 2 CPU cores; micro = seconds, for tests [full]")
    p.add_argument("--tables", type=int, nargs="+", choices=TABLES, default=list(DEFAULT_TABLES),
                   help="which of the paper's tables to run: 1-3 pruning x KD, 4-5 augmentation x KD, 6 NASWOT "
                        "scores, 7-8 loss surfaces [6 7 8]")
    p.add_argument("--dataset", choices=list(DATASETS), default=None,
                   help="dataset for the full study (cifar10, cifar100, npz) [cifar10 for Tables 6-8, cifar100 for "
                        "Tables 1-5]")
    p.add_argument("--teacher", default=None,
                   help="Tables 6-8: an existing teacher checkpoint for the KD methods [train a scratch teacher as "
                        "OUT_DIR/teachers/scratch-teacher]; Tables 1-3 always train one per network")
    p.add_argument("--seeds", type=SEED_COUNT, default=None,
                   help="seeds per method (Tables 6-8) and per cell (Tables 1-5); each cell shows mean ± std and "
                        "a 95%% Student-t interval [full: 5 for Tables 6-8, 3 for Tables 1-5; demo and micro fewer]")
    p.add_argument("--bn-mode", choices=BN_MODES, default=ScoreConfig.bn_mode,
                   help="Table 6: BatchNorm while scoring, train = batch statistics with Dropout off, as NASWOT's "
                        "harness; eval = running statistics (exact per-image gradients); named in the caption [train]")
    p.add_argument("--augment-networks", choices=list(AUGMENT_NETWORKS), default=None,
                   help="Tables 4-5 at full size: paper = PyramidNet-200 alpha 300 (Table 4), PyramidNet-110 alpha 64 "
                        "and PyramidNet-200 alpha 240 (Table 5); pyramidnet110 = PyramidNet-110 alpha 64 in place of "
                        "both PyramidNet-200s, named in every caption [paper; demo and micro: pyramidnet_tiny]")
    p.add_argument("--table4-augment", choices=HOST_AUGMENTS, default=AugmentStudySpec.autoaugment,
                   help="Table 4's AutoAugment pipeline: autoaugment-cutout = DeepVoltaire's (crop with grey padding, "
                        "flip, policy, Cutout 16x16), the code the paper names; autoaugment = the policy first, then "
                        "zero-pad crop and flip, no Cutout (earlier releases) [autoaugment-cutout]")
    p.add_argument("--figures-dir", type=nonempty, default=None, help="where the tables and figures go "
                                                                      "[OUT_DIR/figures]")
    p.add_argument("--allow-cpu", action="store_true", help="run the full-size study on the CPU anyway")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the ETA, run nothing")
    p.add_argument("--bf16", action="store_true", help="train with bf16 autocast on CUDA (recorded in every run)")
    p.add_argument("--tf32", action="store_true", help="train with TF32 convolutions/matmuls on CUDA (recorded)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile every training run (a method's seeds then train one after another)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay every training run's step as one CUDA graph (training.train --cuda-graphs; recorded)")
    p.add_argument("--pack", action=argparse.BooleanOptionalAction, default=None,
                   help="Tables 6-8: train a method's seeds packed into one process with one forward/backward per "
                        "step (--no-pack: one after another) [pack for the full study; not for the CPU presets demo "
                        "and micro, where packing measured slower]")
    p.add_argument("--executor", choices=EXECUTORS, default="sequential",
                   help="sequential = every job in this process; local = submitit subprocesses on this node; slurm = "
                        "submitit Slurm job arrays (needs sbatch) [sequential]")
    p.add_argument("--gpus-per-job", type=positive_int, default=None, metavar="N",
                   help="GPUs each submitted job gets; local: the node's GPUs are cut into groups of N, one job per "
                        "group at a time [1 on a GPU study]")
    p.add_argument("--partition", type=nonempty, default=None, metavar="NAME",
                   help="Slurm partition [the cluster's default]")
    p.add_argument("--time-limit", type=positive_int, default=None, metavar="MIN",
                   help="minutes per submitted job; at the limit submitit requeues it and it resumes [1440]")
    p.add_argument("--max-parallel", type=positive_int, default=None, metavar="N",
                   help="submitted jobs at once (Slurm: array parallelism) [local: one per GPU group, 1 on CPU; "
                        "Slurm: no cap]")
    p.add_argument("--log-dir", type=nonempty, default=None, metavar="DIR",
                   help="submitit's job logs and pickles (--executor local or slurm) [OUT_DIR/submitit]")
    t13 = p.add_argument_group("Tables 1-3 networks and pipeline (default: as the reference code ran them)")
    t13.add_argument("--prune-shortcut", choices=SHORTCUTS, default=None,
                     help="the ResNets' stride-2 shortcut: pad-detached = rethinking-network-pruning's (no gradient "
                          "through it), pad = with gradient, conv = 1x1 conv + BN [pad-detached]")
    t13.add_argument("--prune-normalization", choices=NORMALIZATIONS, default=None,
                     help="input mean/std: rethinking = the reference's constants (CIFAR-10 mean, std "
                          "0.2023/0.1994/0.2010, also for CIFAR-100), cifar = the dataset's true statistics "
                          "[rethinking]")
    t13.add_argument("--l1-skip", choices=L1_SKIP, default=None,
                     help="Table 1: the layers L1 pruning leaves whole, Li et al.'s preset B or A skip list in every "
                          "setting (B is the preset of ResNet-56 40/70/90%% and ResNet-110 50/60/70%%), or none [B]")
    t13.add_argument("--slim-resnet", choices=list(SLIM_RESNETS), default=None,
                     help="Table 2's ResNet-56: preresnet = network slimming's pre-activation bottleneck PreResNet-56 "
                          "(every BN pruned), basic = the basic-block ResNet-56 of Table 1 (bn1 of each block) "
                          "[preresnet]")
    t13.add_argument("--reuse-regressor", action="store_true",
                     help="feature-KD Pre-Post and Self-Distill fine-tuning start the regressor R from the initial "
                          "phase's trained one when its shape fits [a fresh R, as the reference's pruning scripts "
                          "save the pruned network alone]")
    add_common_flags(p)
    return p


def preset_name(a) -> str:
    return "demo" if a.demo else (a.preset or "full")


def with_shared_flags(spec, a):
    """``spec`` (either study's) with the flags both studies take: dataset, data, seeds, numerics."""
    given = {"dataset": a.dataset, "data_dir": a.data_dir, "seeds": tuple(range(a.seeds)) if a.seeds else None}
    return replace(spec, bf16=a.bf16, tf32=a.tf32, compile=a.compile, cuda_graphs=a.cuda_graphs,
                   **{k: v for k, v in given.items() if v is not None})


def prune_spec(a) -> PruneStudySpec:
    """The Tables 1-3 study of the preset and the flags."""
    given = {"shortcut": a.prune_shortcut, "normalization": a.prune_normalization, "l1_skip": a.l1_skip,
             "slim_resnet": a.slim_resnet, "reuse_regressor": a.reuse_regressor or None}
    spec = replace(PRUNE_PRESETS[preset_name(a)], tables=tuple(sorted({1, 2, 3} & set(a.tables))),
                   **{k: v for k, v in given.items() if v is not None})
    return with_shared_flags(spec, a)


def augment_spec(a) -> AugmentStudySpec:
    """The Tables 4-5 study of the preset and the flags."""
    spec = replace(AUGMENT_PRESETS[preset_name(a)], tables=tuple(sorted({4, 5} & set(a.tables))),
                   autoaugment=a.table4_augment)
    return with_shared_flags(with_networks(spec, a.augment_networks), a)


def study_spec(a) -> StudySpec:
    spec = with_shared_flags(PRESETS[preset_name(a)], a)
    spec = replace(spec, pack_seeds=spec.pack_seeds if a.pack is None else a.pack, score_bn_mode=a.bn_mode)
    if a.teacher:
        if not Path(a.teacher).is_file():
            raise UserError(f"--teacher {a.teacher} is not a file; give an orthokd checkpoint (e.g. "
                            "OUT_DIR/teachers/scratch-teacher/ckpt_e160.pt) or leave --teacher out to train one")
        spec = replace(spec, teacher=a.teacher)
    return spec


def check_inputs(a, specs) -> None:
    """Refuse a wrong --dataset / --data-dir (each wanted study's split is read: a missing or malformed dataset is one
    line) and a --teacher that is not an orthokd checkpoint, before the plan is printed or anything is probed."""
    for dataset, data_dir in dict.fromkeys((s.dataset, s.data_dir) for s in specs):
        load_split(dataset, "test", data_dir)
    if a.teacher:
        load_checkpoint(a.teacher, damaged_fix="pass another --teacher, or leave it out to train one")


def device_label(device, executor: str) -> str:
    """The device a probe measures, as its cache key names it: the GPU's model name where this process can see it."""
    if device.type == "cuda" and executor != "slurm" and torch.cuda.is_available():
        return f"{device.type} ({torch.cuda.get_device_name(device.index or 0)})"
    return f"{device.type}{' (slurm node)' if executor == 'slurm' else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    spec, pspec, aspec, tables = study_spec(a), prune_spec(a), augment_spec(a), set(a.tables)
    runs_dir = Path(a.out_dir)
    device = job_device(a.device, a.executor)
    settings = executor_settings(a.executor, runs_dir, device, a.log_dir, a.gpus_per_job, a.partition, a.time_limit,
                                 a.max_parallel)
    if preset_name(a) == "full":
        if spec.data_dir is None:
            raise UserError("the full-size study needs the real dataset, not the embedded 5,000-image subset: pass "
                            "--data-dir DIR (the folder holding torchvision's CIFAR-10 / CIFAR-100), or use --preset "
                            "demo or micro")
        require_gpu(device, a.allow_cpu, "the full-size study")
    check_inputs(a, [s for s, wanted in ((spec, tables & {6, 7, 8}), (pspec, pspec.tables), (aspec, aspec.tables))
                     if wanted])
    figs = Path(a.figures_dir) if a.figures_dir else runs_dir / "figures"
    if pspec.tables:
        networks = sorted({s.model for t in pspec.tables for s in pspec.settings(t)})
        log(f"study, Tables {' '.join(map(str, pspec.tables))}: {', '.join(networks)} on {pspec.dataset}, "
            f"{len(pspec.seeds)} seed(s), {pspec.epochs} initial + {pspec.finetune_epochs} fine-tuning epochs per "
            "schedule", a.quiet)
    if aspec.tables:
        log(f"study, Tables {' '.join(map(str, aspec.tables))}: "
            f"{', '.join(sorted({s.model for t in aspec.tables for s in aspec.settings(t)}))} on {aspec.dataset}, "
            f"{len(aspec.seeds)} seed(s), {aspec.epochs} epochs per run", a.quiet)
    if tables & {6, 7, 8}:
        log(f"study, Tables {' '.join(str(t) for t in sorted(tables & {6, 7, 8}))}: {spec.model} (width "
            f"{spec.width}), {len(spec.methods)} methods x {len(spec.seeds)} seeds, "
        f"{spec.epochs} epochs (LR steps after {list(spec.lr_milestones)}), surfaces {spec.surface_steps}x"
        f"{spec.surface_steps} at epochs {list(spec.surface_epochs)}, teacher {teacher_checkpoint(runs_dir, spec)}"
        f"{'' if spec.teacher else ' (trained first)'}, device {device}"
        f"{f', submitit {settings.kind} executor, logs in {settings.folder}' if settings else ''}", a.quiet)
    models = {s.model: pspec.base(s.model, 0).width for t in pspec.tables for s in pspec.settings(t)}
    models.update({s.model: 16 for t in aspec.tables for s in aspec.settings(t)})
    if tables & {6, 7, 8}:
        models[spec.model] = spec.width
    # On Slurm the probe runs as a job, on the kind of node the study's jobs get. Each network's rates are kept in
    # OUT_DIR/probe.json, so a restarted study resumes its work at once instead of probing again.
    where = device_label(device, a.executor)
    rates = {m: cached_rates(runs_dir / PROBE_CACHE, f"{m} width {w} on {where}",
                             lambda m=m, w=w: remote_call(settings, probe, m, w, device) if a.executor == "slurm"
                             else probe(m, w, device))
             for m, w in models.items()}
    for m, r in rates.items():
        log(f"probe {m}: {r.train_images_per_s:.0f} training img/s, {r.forward_images_per_s:.0f} inference img/s",
            a.quiet)

    def table_jobs(chosen: set[int]) -> list[Job]:
        """Every job the tables ``chosen`` need (the shared runs once)."""
        p, g = sorted(chosen & set(pspec.tables)), sorted(chosen & set(aspec.tables))
        return (surface_study_jobs(spec, chosen, runs_dir, figs, rates.get(spec.model), device)
                + (prune_jobs(replace(pspec, tables=tuple(p)), runs_dir, figs, rates, str(device)) if p else [])
                + (augment_jobs(replace(aspec, tables=tuple(g)), runs_dir, figs, rates, str(device)) if g else []))

    log(table_hours_line({t: sum(j.cost for j in table_jobs({t})) for t in tables}, device), a.quiet)
    jobs = table_jobs(tables)
    run_jobs(sorted(jobs, key=lambda j: STAGES.index(j.stage)), a.quiet, a.dry_run,
             submitit_runner(settings) if settings else run_in_order)
    if not a.dry_run:
        print(f"tables and figures: {figs}")
        for name in (*(f"table{t}.md" for t in (1, 2, 3, 4, 5, 6) if t in tables),
                     *(f"table{t}_{k}.md" for t in (7, 8) if t in tables for k in ("hessian", "flatness"))):
            if (figs / name).is_file():
                print((figs / name).read_text())
        # The last stage reads what the others wrote (seconds), so a re-run makes it again from the current tables.
        start = time.perf_counter()
        claims = claims_and_report(runs_dir, figs, figs, preset_name(a), a.seeds, a.augment_networks)
        print(claims[0].read_text())
        log(f"claims and report: {claims[-1]} ({time.perf_counter() - start:.1f} s)", a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
