"""``python -m training.train --seeds 0 1 2 --out-dir runs/M-s{seed}``: one run per seed, all trained in one process
with one forward/backward per step (docs/reference.md "Training runs and checkpoints"; the packed step is
training.engine.packed_step).

Each seed is a whole run of its own: its directory (``{seed}`` in ``--out-dir`` replaced by the seed), lock,
config.json (that seed's record, as a single run writes it), metrics.jsonl, last.pt and milestone checkpoints, all
prepared and written by the single run's own code (training.engine.prepare, training.engine.run,
training.engine.publish), so a packed run's directory resumes as a single run and vice versa.

Resume: every run resumes from its own last.pt. Runs may stand at different epochs (a kill between two runs'
saves, or a run continued alone): each epoch trains the unfinished runs at the lowest epoch, so a run that is
behind catches up (alone, or packed with the others behind) and then trains packed with the rest; finished
runs are left as they are.
"""
from __future__ import annotations

import dataclasses
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from training.config import RuntimeOptions, TrainConfig
from training.data.batches import DeviceSplit
from training.engine.console import banner, epoch_line, progress_bar
from training.engine.loop import steps_per_epoch
from training.engine.packed_step import train_packed_epoch
from training.engine.prepare import claimed_run_dirs, prepare
from training.engine.publish import open_tensorboard, publish_epoch
from training.engine.run import Run, end_epoch, run_record
from training.errors import UserError
from training.log import log
from training.runtime.backends import configure_backends
from training.runtime.device import resolve_device
from training.runtime.distributed import DistInfo, requested_world_size
from training.store.rundir import LAST, read_metrics


def run_dirs(template: str, seeds: Sequence[int]) -> list[Path]:
    """One run directory per seed: ``template`` with every ``{seed}`` replaced by the seed; refuses a template
    without ``{seed}`` and repeated seeds (two runs would share one directory)."""
    if "{seed}" not in template:
        raise UserError(f"--out-dir {template} must contain {{seed}} with --seeds (one directory per seed), "
                        "e.g. runs/scratch-s{seed}")
    repeated = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if repeated:
        raise UserError(f"--seeds lists {' '.join(map(str, repeated))} more than once; give each seed once")
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    return [Path(template.replace("{seed}", str(s))) for s in seeds]


def fit_seeds(cfg: TrainConfig, seeds: Sequence[int], out_dir_template: str,
              opts: RuntimeOptions = RuntimeOptions(), overwrite: bool = False) -> list[Path]:
    """Train (or resume) one run of ``cfg`` per seed in ``seeds`` (``cfg.seed`` is ignored), packed; returns the
    runs' ``last.pt`` paths. Holds every run directory's lock for the whole call."""
    if requested_world_size() > 1:
        raise UserError("--seeds trains all seeds in one process; run it without torchrun (or drop --seeds)")
    if cfg.compile:
        raise UserError("--compile does not apply to --seeds (the packed step is vmapped); drop --compile")
    dirs = run_dirs(out_dir_template, seeds)
    device = resolve_device(opts.device)
    configure_backends(cfg.tf32, opts.deterministic)
    p = prepare(cfg, DistInfo())
    cfg = p.cfg
    if cfg.regressor_init:
        raise UserError("--seeds does not support --regressor-init; train those seeds one at a time with --seed")
    if cfg.keep_zeros or cfg.slim_s:
        # Pruning masks and the slimming gradient term act on a run's own modules, which the packed step bypasses.
        raise UserError("--seeds does not support --keep-zeros (a weight-pruned --init) or --slim-s; "
                        "train those seeds one at a time with --seed")
    cfgs = [dataclasses.replace(cfg, seed=s) for s in seeds]
    records = [run_record(c, p.teacher_sha, len(p.train_set), 1, p.init_sha, packed=len(seeds)) for c in cfgs]
    with claimed_run_dirs(cfg, dirs, records, overwrite, opts.quiet) as decisions:
        runs = []
        for c, d, decision in zip(cfgs, dirs, decisions):
            run = Run(c, p.train_set.num_classes, p.teacher, p.teacher_sha, device, DistInfo())
            if decision == "resume":
                run.restore(d / LAST)
                log(f"resuming {d} after epoch {run.epoch}", opts.quiet)
            runs.append(run)
        _train_all(runs, dirs, opts, device, DeviceSplit.from_imageset(p.train_set, device),
                   DeviceSplit.from_imageset(p.test_set, device), p.train_set.description)
    return [d / LAST for d in dirs]


def _train_all(runs: list[Run], dirs: list[Path], opts: RuntimeOptions, device: torch.device, train_data: DeviceSplit,
               test_data: DeviceSplit, description: str) -> None:
    cfg, quiet = runs[0].cfg, opts.quiet
    limit = cfg.epochs if opts.stop_after_epoch is None else min(cfg.epochs, opts.stop_after_epoch)
    rows = [read_metrics(d, r.epoch) for d, r in zip(dirs, runs)]
    for d, r in zip(dirs, runs):
        if r.epoch >= cfg.epochs:
            log(f"{d} is already complete ({cfg.epochs} epochs); nothing to do for it", quiet)
    n = len(train_data)
    log(banner(cfg, description, n, len(test_data), steps_per_epoch(n, cfg.batch_size, 1), device,
               runs=f"{len(runs)} runs (seeds {' '.join(str(r.cfg.seed) for r in runs)}) packed in one process, "),
        quiet)
    bar = progress_bar(len(runs) * cfg.epochs * n, sum(r.epoch for r in runs) * n, quiet, f"train x{len(runs)}")
    writers = [open_tensorboard(d, opts, DistInfo()) for d in dirs]
    try:
        while True:
            todo = [i for i, r in enumerate(runs) if r.epoch < limit]
            if not todo:
                break
            epoch = 1 + min(runs[i].epoch for i in todo)
            group = [i for i in todo if runs[i].epoch == epoch - 1]
            lr = runs[group[0]].optimizer.param_groups[0]["lr"]
            # A group that catches up (a kill landed between two runs' saves) is padded to the pack's size with
            # repeats of its runs: the kernels then see the shapes of the uninterrupted pack, so each run's result
            # does not depend on how many ran beside it (the repeats compute the same values and are dropped).
            padded = [runs[group[j % len(group)]] for j in range(len(runs))]
            stats = train_packed_epoch(padded, train_data, epoch, device, bar.update)[: len(group)]
            for i, st in zip(group, stats):
                run = runs[i]
                with warnings.catch_warnings():
                    # The run's own optimizer did not step (the packed one did), which the scheduler would warn about.
                    warnings.filterwarnings(
                        "ignore", message=re.escape("Detected call of `lr_scheduler.step()` before")
                    )
                    row = end_epoch(run, epoch, lr, st, test_data, DistInfo(), who=f" of seed {run.cfg.seed}")
                publish_epoch(run, dirs[i], row, rows[i], opts, writers[i])
                if not quiet:
                    bar.write(epoch_line(row, cfg.epochs, who=f"seed {run.cfg.seed} "), sys.stderr)
    finally:
        bar.close()
        for w in writers:
            if w is not None:
                w.close()
