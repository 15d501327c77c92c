"""A whole training run (docs/reference.md §5): run directory, resume, epochs, milestone checkpoints.

``fit`` is what ``python -m training.train`` calls once its flags are mapped into a ``TrainConfig``.
"""
from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.runtime.backends import configure_backends
from training.store.checkpoint import load_checkpoint, load_model, save_checkpoint
from training.store.files import provenance, sha256_file
from training.log import log
from training.runtime.device import resolve_device
from training.config import RuntimeOptions, TrainConfig
from training.data.datasets import ImageSet, load_split
from training.runtime.distributed import DistInfo, barrier, init_distributed, shutdown
from training.errors import CheckpointError, UserError
from training.engine.init import init_student, load_regressor, prepare_init
from training.store.lock import exclusive_lock
from training.data.batches import DeviceSplit
from training.engine.loop import EpochStats, evaluate, steps_per_epoch, train_one_epoch
from training.objectives import aux_modules, build_objective, method_spec
from training.models.registry import build_model, training_kwargs
from training.models.wrap import compile_model
from training.runtime.optional import require
from training.pruning.structured import add_slimming_subgradient
from training.pruning.weights import load_plain_state_dict, plain_state_dict
from training.store.rundir import LAST, check_run_dir, milestone_name, read_metrics, start_run_dir, write_metrics
from training.runtime.syncbn import convert_sync_batchnorm
from training.runtime.threads import divided_threads

RESUME_FIX = "pass --overwrite to start this run again"
RNG_NOTE = "per-epoch generators from numpy SeedSequence([seed, epoch, stream, 0]), the same on every rank"


_NAMED_DATASETS = ("cifar10", "cifar100")  # npz folders may hold either, so only these names are compared


def load_teacher(path: str, num_classes: int, dataset: str | None = None) -> tuple[nn.Module, str]:
    """The teacher model (CPU, eval) and its sha256; it must predict ``num_classes`` classes and, when both this
    run's ``dataset`` and the teacher's are cifar10/cifar100, have been trained on the same one."""
    try:
        teacher, ckpt = load_model(path)
    except CheckpointError as e:
        raise UserError(f"--teacher: {e}") from None
    trained_on = ckpt["config"].get("dataset", "cifar10")
    if dataset in _NAMED_DATASETS and trained_on in _NAMED_DATASETS and trained_on != dataset:
        raise UserError(f"--teacher {path} was trained on {trained_on} but this run trains on {dataset}; "
                        "pass a teacher trained on the same dataset")
    if ckpt["arch"]["num_classes"] != num_classes:
        raise UserError(
            f"--teacher {path} predicts {ckpt['arch']['num_classes']} classes but the dataset has {num_classes}; "
            "pass a teacher trained on the same dataset"
        )
    return teacher, sha256_file(path)


def augmentation(config: dict[str, Any]) -> dict[str, Any]:
    """The augmentation a run trained with, from its config record: its per-image host augmentation (``augment``,
    "none" in records older than the field) and whether its method has CutMix."""
    return {"augment": config.get("augment", "none"), "cutmix": method_spec(config.get("method", "scratch")).cutmix}


def teacher_augmentation(path: str) -> dict[str, Any]:
    """``augmentation`` of the teacher checkpoint at ``path`` (read from the config it records), with its method."""
    config = load_checkpoint(path)["config"]
    return {"method": config.get("method"), **augmentation(config)}


def run_record(cfg: TrainConfig, teacher_sha: str | None, train_images: int, world_size: int,
               init_sha: str | None = None, packed: int | None = None) -> dict[str, Any]:
    """What config.json holds (equality decides resume): the config, the teacher's sha256, the number of training
    images and of processes (a DDP run resumed under another process count is refused), with --init the init
    checkpoint's sha256, and for a run trained packed with others (``--seeds``) the pack's size ``packed``: the
    vmapped step of K runs rounds differently from a single run's, so a run is resumed only under the packing it
    started with. The last two only when set, so records of runs without them keep their keys."""
    record = {**cfg.to_json(), "teacher_sha256": teacher_sha, "train_images": train_images, "world_size": world_size}
    return {**record, **({"init_sha256": init_sha} if init_sha else {}), **({"packed": packed} if packed else {})}


def _check_config(cfg: TrainConfig, dist: DistInfo) -> None:
    spec = method_spec(cfg.method)
    if spec.objective != "ce" and not cfg.teacher:
        raise UserError(f"method {cfg.method} distils from a teacher: pass --teacher CKPT (an orthokd checkpoint)")
    if cfg.cuda_graphs and dist.enabled:
        raise UserError("--cuda-graphs captures one process's step; under torchrun drop --cuda-graphs")
    if cfg.batch_size % dist.world_size:
        raise UserError(f"--batch-size {cfg.batch_size} must be divisible by the {dist.world_size} torchrun processes")


class Run:
    """Model, objective, optimizer and schedule of one run, with schema-v1 checkpointing."""

    def __init__(self, cfg: TrainConfig, num_classes: int, teacher: nn.Module | None, teacher_sha: str | None,
                 device: torch.device, dist: DistInfo):
        self.cfg, self.device, self.dist = cfg, device, dist
        kwargs = training_kwargs(cfg.model, cfg.width, cfg.shortcut)
        self.arch = {"name": cfg.model, "num_classes": num_classes, **kwargs}
        torch.manual_seed(cfg.seed)
        self.init: dict[str, Any] = {}  # with --init: {init, init_sha256, pruning} of the start checkpoint
        if cfg.init:
            student, self.arch, self.init = init_student(cfg, num_classes)
        else:
            student = build_model(cfg.model, num_classes, **kwargs)
        if dist.enabled and cfg.sync_bn:
            student = convert_sync_batchnorm(student, device)
        if cfg.compile and teacher is not None:
            compile_model(teacher)
        self.objective = build_objective(cfg.method, student, teacher, cfg)
        regressor = ({"regressor_init_sha256": load_regressor(self.objective, cfg.regressor_init)}
                     if cfg.regressor_init else {})
        self.objective.to(device)
        if cfg.channels_last:
            self.objective.to(memory_format=torch.channels_last)
        self.student = student
        # The augmentation record: the teacher always sees the student's batch, so with "teacher yes / student no"
        # it sees plain batches; this states which of the four combinations the run is.
        self.method = {"name": cfg.method, "teacher": cfg.teacher, "teacher_sha256": teacher_sha,
                       "augmentation": augmentation(cfg.to_json()),
                       **({"teacher_augmentation": teacher_augmentation(cfg.teacher)} if cfg.teacher else {}),
                       **{k: v for k, v in self.init.items() if k != "pruning"}, **regressor}
        params = [p for p in self.objective.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                         nesterov=cfg.nesterov, fused=device.type == "cuda")
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(cfg.lr_milestones), cfg.lr_gamma)
        self.epoch, self.step = 0, 0
        if cfg.compile:
            # The networks only: the loss terms stay eager, so CutMix's varying lambda does not trigger recompiles.
            compile_model(student)
        self.train_module: nn.Module = self.objective
        if dist.enabled:
            self.train_module = DistributedDataParallel(self.objective, device_ids=[device.index] if device.type == "cuda" else None)

    def state(self, metrics: dict[str, Any], rng_note: dict[str, Any]) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "model": plain_state_dict(self.student),  # masked convs (--keep-zeros) as plain weights
            "method": self.method,
            "aux": {k: m.state_dict() for k, m in aux_modules(self.objective).items()},
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {k: (dict(v) if k == "milestones" else v) for k, v in self.scheduler.state_dict().items()},
            "scaler": {},
            "rng": rng_note,
            "config": self.cfg.to_json(),
            "metrics": metrics,
            "provenance": provenance(self.device),
            **({"pruning": self.init["pruning"]} if self.init.get("pruning") else {}),
        }

    def restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path, damaged_fix=RESUME_FIX)
        try:
            load_plain_state_dict(self.student, ckpt["model"])
            for k, m in aux_modules(self.objective).items():
                m.load_state_dict(ckpt["aux"][k])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path} does not fit this run ({str(e).splitlines()[0][:160]}); {RESUME_FIX}") from None
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])


def _progress(cfg: TrainConfig, done_epochs: int, images_per_epoch: int, quiet: bool):
    """One bar over the whole run, counted in training images: its rate is img/s, its ETA the run's."""
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs * images_per_epoch, initial=done_epochs * images_per_epoch, unit="img",
                unit_scale=True, file=sys.stderr, disable=quiet, dynamic_ncols=True, desc="train")


def fit(cfg: TrainConfig, out_dir: str | Path, opts: RuntimeOptions = RuntimeOptions(), overwrite: bool = False) -> Path:
    """Train (or resume) the run in ``out_dir``; returns the path of ``last.pt``. Rank 0 holds an exclusive
    lock on ``out_dir`` for the whole run, so a second process on the same directory is refused."""
    out_dir = Path(out_dir)
    device = resolve_device(opts.device)
    configure_backends(cfg.tf32, opts.deterministic)
    dist = init_distributed(device)
    # The AutoAugment workers share the host's cores with this process (training.runtime.threads): they count as one more
    # process whatever --workers is, since the thread count changes CPU rounding and a resume with another worker
    # count must stay bitwise.
    try:
        with divided_threads(helpers=1 if cfg.augment != "none" else 0):
            return _fit(cfg, out_dir, opts, overwrite, device, dist)
    finally:
        shutdown(dist)


def _fit(cfg, out_dir, opts, overwrite, device, dist) -> Path:
    quiet = opts.quiet or not dist.is_main
    _check_config(cfg, dist)
    train_set = load_split(cfg.dataset, "train", cfg.data_dir, cfg.max_train_images, cfg.normalization)
    test_set = load_split(cfg.dataset, "test", cfg.data_dir, normalization=cfg.normalization)
    teacher, teacher_sha = load_teacher(cfg.teacher, train_set.num_classes, cfg.dataset) if cfg.teacher else (None, None)
    cfg, init_sha = prepare_init(cfg, train_set.num_classes)
    train_data = DeviceSplit.from_imageset(train_set, device, cfg.augment, opts.workers)  # refuses AutoAugment sizes
    record = run_record(cfg, teacher_sha, len(train_set), dist.world_size, init_sha)
    decision = check_run_dir(out_dir, record, overwrite)  # refuse before creating or locking anything
    late = [e for e in cfg.lr_milestones if e >= cfg.epochs]
    if late:
        log(f"note: --lr-milestones {late} lie at or past --epochs {cfg.epochs} and do not apply in this run", quiet)
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir, f"run directory {out_dir}") if dist.is_main else contextlib.nullcontext():
        if dist.is_main:
            decision = check_run_dir(out_dir, record, overwrite)  # again: nobody else changes it now
            start_run_dir(out_dir, record, decision)
        barrier(dist)
        return _train(cfg, out_dir, opts, decision == "resume", device, dist, train_set, train_data, test_set, teacher,
                      teacher_sha)


def _train(cfg: TrainConfig, out_dir: Path, opts: RuntimeOptions, resume: bool, device: torch.device, dist: DistInfo,
           train_set: ImageSet, train_data: DeviceSplit, test_set: ImageSet, teacher: nn.Module | None,
           teacher_sha: str | None) -> Path:
    quiet = opts.quiet or not dist.is_main
    run = Run(cfg, train_set.num_classes, teacher, teacher_sha, device, dist)
    if resume:
        run.restore(out_dir / LAST)
        log(f"resuming {out_dir} after epoch {run.epoch}", quiet)
    metrics_rows = read_metrics(out_dir, run.epoch)
    if run.epoch >= cfg.epochs:
        log(f"{out_dir} is already complete ({cfg.epochs} epochs); nothing to do", quiet)
        return out_dir / LAST

    test_data = DeviceSplit.from_imageset(test_set, device)
    steps = steps_per_epoch(len(train_data), cfg.batch_size, dist.world_size)
    log(f"{cfg.method} {cfg.model} on {train_set.description}: {len(train_data)} train / {len(test_data)} test images, "
        f"{cfg.epochs} epochs x {steps} steps, device {device}, {dist.world_size} process(es)"
        f"{', SyncBatchNorm' if dist.enabled and cfg.sync_bn else ''}, {torch.get_num_threads()} CPU thread(s), "
        f"{'TF32' if cfg.tf32 else 'IEEE fp32'}"
        f"{' + bf16 autocast' if cfg.amp_bf16 else ''}"
        f"{f', AutoAugment in {opts.workers} worker(s)' if cfg.augment != 'none' else ''}", quiet)
    writer = _tensorboard(out_dir, opts, dist)
    bar = _progress(cfg, run.epoch, len(train_data), quiet)
    milestones = set(cfg.milestone_epochs())
    rng_note = {"scheme": RNG_NOTE, "seed": cfg.seed}
    try:
        while run.epoch < cfg.epochs:
            epoch = run.epoch + 1
            lr = run.optimizer.param_groups[0]["lr"]

            def on_step(n, stats, _count=[0]):
                bar.update(n * dist.world_size)
                _count[0] += 1
                if not quiet and _count[0] % 25 == 0:
                    bar.set_postfix(epoch=epoch, lr=f"{lr:g}", **{k: f"{v:.3f}" for k, v in stats().items()})

            st = train_one_epoch(run.train_module, run.optimizer, train_data, cfg, epoch, dist, device, on_step,
                                 after_backward=slimming_hook(run.student, cfg.slim_s))
            row = end_epoch(run, epoch, lr, st, test_data, dist)
            metrics_rows.append(row)
            if dist.is_main:
                _save_epoch(run, out_dir, row, metrics_rows, epoch in milestones or opts.keeps(epoch), rng_note)
                if writer is not None:
                    for k, v in row.items():
                        writer.add_scalar(k, v, epoch)
            if not quiet:
                bar.write(f"epoch {epoch}/{cfg.epochs} lr {lr:g} train loss {st.loss:.4f} acc {st.acc:.2f}% | "
                          f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}% | {row['images_per_s']:.0f} img/s", sys.stderr)
            barrier(dist)
            if opts.stop_after_epoch is not None and epoch >= opts.stop_after_epoch:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    return out_dir / LAST


def slimming_hook(student: nn.Module, s: float):
    """The after-backward hook of network-slimming sparsity training (s > 0), or None (s = 0)."""
    return (lambda: add_slimming_subgradient(student, s)) if s > 0 else None


def end_epoch(run: Run, epoch: int, lr: float, st: EpochStats, test_data: DeviceSplit, dist: DistInfo,
              who: str = "") -> dict[str, Any]:
    """After an epoch's steps: the scheduler's step, the run's epoch and step counters, the test evaluation (a
    non-finite test loss is refused; nothing of the epoch is saved) and the epoch's metrics row. ``who`` names the
    run in that error (packed runs)."""
    cfg = run.cfg
    run.scheduler.step()
    run.epoch, run.step = epoch, run.step + st.steps
    test_loss, test_acc = evaluate(run.student, test_data, dist, cfg.eval_batch_size, cfg.channels_last, cfg.amp_bf16)
    if not math.isfinite(test_loss):
        raise UserError(f"non-finite test loss{who} after epoch {epoch} (the weights diverged in its last steps); "
                        f"stopped without saving epoch {epoch}; earlier checkpoints are kept. Lower --lr")
    return {"epoch": epoch, "lr": lr, "train_loss": st.loss, "train_acc": st.acc, "test_loss": test_loss,
            "test_acc": test_acc, "seconds": st.seconds, "images_per_s": st.images / st.seconds}


def _save_epoch(run: Run, out_dir: Path, row: dict, rows: list[dict], milestone: bool, rng_note: dict) -> None:
    """metrics.jsonl first, then the milestone (or --save-every) checkpoint, then last.pt: a crash in between
    leaves a state that resume repairs (metrics lines past last.pt's epoch are dropped on resume)."""
    row["best_test_acc"] = max(r["test_acc"] for r in rows)  # the reference trainers' number, beside the last epoch's
    write_metrics(out_dir, rows)
    metrics = {k: row[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "best_test_acc")}
    state = run.state(metrics, rng_note)
    if milestone:
        save_checkpoint(state, out_dir / milestone_name(run.epoch))
    save_checkpoint(state, out_dir / LAST)


def _tensorboard(out_dir: Path, opts: RuntimeOptions, dist: DistInfo):
    if not (opts.tensorboard and dist.is_main):
        return None
    tensorboard = require("torch.utils.tensorboard", "tensorboard", "--tensorboard")
    return tensorboard.SummaryWriter(str(out_dir / "tb"))
