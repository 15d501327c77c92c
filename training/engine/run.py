"""One run's state and records: the model, objective, optimizer and schedule (``Run``, with schema-v1 checkpoint
state and resume), the teacher it distils from, its config.json record and the step that closes each epoch.

Shared by the single run (training.engine.fit) and the packed runs (training.engine.packed).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.config import TrainConfig
from training.data.batches import DeviceSplit
from training.engine.init import init_student, load_regressor
from training.engine.loop import EpochStats, evaluate
from training.errors import CheckpointError, UserError
from training.models.registry import build_model, training_kwargs
from training.models.wrap import compile_model
from training.objectives import build_objective, method_spec
from training.pruning.structured import add_slimming_subgradient
from training.pruning.weights import load_plain_state_dict, plain_state_dict
from training.runtime.distributed import DistInfo
from training.runtime.syncbn import convert_sync_batchnorm
from training.store.checkpoint import load_checkpoint, load_model
from training.store.files import provenance, sha256_file

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


def check_config(cfg: TrainConfig, dist: DistInfo) -> None:
    """Refuse flags that do not go together: a KD method without --teacher, --cuda-graphs under torchrun, a batch
    that the torchrun processes cannot share evenly."""
    if method_spec(cfg.method).distils and not cfg.teacher:
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
            self.train_module = DistributedDataParallel(
                self.objective, device_ids=[device.index] if device.type == "cuda" else None
            )

    def state(self, metrics: dict[str, Any], rng_note: dict[str, Any]) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "model": plain_state_dict(self.student),  # masked convs (--keep-zeros) as plain weights
            "method": self.method,
            "aux": {k: m.state_dict() for k, m in self.objective.aux_modules().items()},
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
            for k, m in self.objective.aux_modules().items():
                m.load_state_dict(ckpt["aux"][k])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(
                f"{path} does not fit this run ({str(e).splitlines()[0][:160]}); {RESUME_FIX}"
            ) from None
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])


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
