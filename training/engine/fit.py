"""A whole single training run (docs/reference.md "Training runs and checkpoints"): run directory, resume, epochs,
milestone checkpoints.

``fit`` is what ``python -m training.train`` calls once its flags are mapped into a ``TrainConfig``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from training.config import RuntimeOptions, TrainConfig
from training.data.batches import DeviceSplit
from training.engine.console import EpochProgress, banner, epoch_line, progress_bar
from training.engine.loop import steps_per_epoch, train_one_epoch
from training.engine.prepare import Prepared, claimed_run_dirs, prepare
from training.engine.publish import open_tensorboard, publish_epoch
from training.engine.run import Run, end_epoch, run_record, slimming_hook
from training.log import log
from training.runtime.backends import configure_backends
from training.runtime.device import resolve_device
from training.runtime.distributed import DistInfo, barrier, init_distributed, shutdown
from training.runtime.threads import divided_threads
from training.store.rundir import LAST, read_metrics


def fit(
    cfg: TrainConfig, out_dir: str | Path, opts: RuntimeOptions = RuntimeOptions(), overwrite: bool = False
) -> Path:
    """Train (or resume) the run in ``out_dir``; returns the path of ``last.pt``. Rank 0 holds an exclusive
    lock on ``out_dir`` for the whole run, so a second process on the same directory is refused."""
    out_dir = Path(out_dir)
    device = resolve_device(opts.device)
    configure_backends(cfg.tf32, opts.deterministic)
    dist = init_distributed(device)
    # The AutoAugment workers share the host's cores with this process (training.runtime.threads): they count as one
    # more
    # process whatever --workers is, since the thread count changes CPU rounding and a resume with another worker
    # count must stay bitwise.
    try:
        with divided_threads(helpers=1 if cfg.augment != "none" else 0):
            return _fit(cfg, out_dir, opts, overwrite, device, dist)
    finally:
        shutdown(dist)


def _fit(cfg: TrainConfig, out_dir: Path, opts: RuntimeOptions, overwrite: bool, device: torch.device,
         dist: DistInfo) -> Path:
    quiet = opts.quiet or not dist.is_main
    p = prepare(cfg, dist)
    # refuses AutoAugment sizes
    train_data = DeviceSplit.from_imageset(p.train_set, device, p.cfg.augment, opts.workers)
    record = run_record(p.cfg, p.teacher_sha, len(p.train_set), dist.world_size, p.init_sha)
    with claimed_run_dirs(p.cfg, [out_dir], [record], overwrite, quiet, dist.is_main) as (decision,):
        barrier(dist)
        return _train(p, out_dir, opts, decision == "resume", device, dist, train_data)


def _train(p: Prepared, out_dir: Path, opts: RuntimeOptions, resume: bool, device: torch.device, dist: DistInfo,
           train_data: DeviceSplit) -> Path:
    cfg, quiet = p.cfg, opts.quiet or not dist.is_main
    run = Run(cfg, p.train_set.num_classes, p.teacher, p.teacher_sha, device, dist)
    if resume:
        run.restore(out_dir / LAST)
        log(f"resuming {out_dir} after epoch {run.epoch}", quiet)
    metrics_rows = read_metrics(out_dir, run.epoch)
    if run.epoch >= cfg.epochs:
        log(f"{out_dir} is already complete ({cfg.epochs} epochs); nothing to do", quiet)
        return out_dir / LAST

    test_data = DeviceSplit.from_imageset(p.test_set, device)
    steps = steps_per_epoch(len(train_data), cfg.batch_size, dist.world_size)
    log(banner(cfg, p.train_set.description, len(train_data), len(test_data), steps, device,
               processes=f", {dist.world_size} process(es){', SyncBatchNorm' if dist.enabled and cfg.sync_bn else ''}, "
                         f"{torch.get_num_threads()} CPU thread(s)",
               extras=f", AutoAugment in {opts.workers} worker(s)" if cfg.augment != "none" else ""), quiet)
    writer = open_tensorboard(out_dir, opts, dist)
    bar = progress_bar(cfg.epochs * len(train_data), run.epoch * len(train_data), quiet, "train")
    try:
        while run.epoch < cfg.epochs:
            epoch = run.epoch + 1
            lr = run.optimizer.param_groups[0]["lr"]
            st = train_one_epoch(run.train_module, run.optimizer, train_data, cfg, epoch, dist, device,
                                 EpochProgress(bar, epoch, lr, dist.world_size, quiet),
                                 after_backward=slimming_hook(run.student, cfg.slim_s))
            row = end_epoch(run, epoch, lr, st, test_data, dist)
            if dist.is_main:
                publish_epoch(run, out_dir, row, metrics_rows, opts, writer)
            if not quiet:
                bar.write(epoch_line(row, cfg.epochs), sys.stderr)
            barrier(dist)
            if opts.stop_after_epoch is not None and epoch >= opts.stop_after_epoch:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    return out_dir / LAST
