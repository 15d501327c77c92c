"""Runs that start from a checkpoint (``--init``), as the fine-tuning phase of the pruning study (docs/reference.md
"Pruning as the reference code ran it").

``--init CKPT`` builds the student from the checkpoint's ``arch`` and weights (a pruned checkpoint's arch rebuilds
the smaller network) instead of a random init; ``--model``/``--width``/``--shortcut`` must name that arch, so a run
never silently trains something other than what its flags say. A weight-pruned init (``pruning.rule == "weight"``)
turns ``keep_zeros`` on: its zero conv weights become ``torch.nn.utils.prune`` masks that hold them at exactly 0
through every step (restore_weight_masks). ``regressor_init`` starts feature KD's regressor R from another
checkpoint's trained one (the pruning study's initial phase) instead of a fresh random 1x1 conv (load_regressor).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from training.config import TrainConfig
from training.errors import CheckpointError, UserError
from training.models.registry import training_kwargs
from training.objectives import Objective
from training.pruning.weights import restore_weight_masks
from training.store.checkpoint import load_checkpoint, model_from_checkpoint
from training.store.files import sha256_file


def _load_init(path: str) -> dict[str, Any]:
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        raise UserError(f"--init: {e}") from None


def check_init_arch(cfg: TrainConfig, arch: dict[str, Any], num_classes: int) -> None:
    """Refuse an --init whose architecture differs from --model / --width / --shortcut or from the dataset's
    number of classes (one line naming the flag to change)."""
    if arch["name"] != cfg.model:
        raise UserError(f"--init {cfg.init} holds a {arch['name']} but --model is {cfg.model}; pass --model "
                        f"{arch['name']}")
    for key, value in training_kwargs(cfg.model, cfg.width, cfg.shortcut).items():
        if arch.get(key) != value:
            raise UserError(f"--init {cfg.init} has {key} {arch.get(key)} but --{key} is {value}; "
                            f"pass --{key} {arch.get(key)}")
    if arch["num_classes"] != num_classes:
        raise UserError(f"--init {cfg.init} predicts {arch['num_classes']} classes but the dataset has {num_classes}; "
                        "pass a checkpoint trained on the same dataset")


def prepare_init(cfg: TrainConfig, num_classes: int) -> tuple[TrainConfig, str | None]:
    """(the config with ``keep_zeros`` resolved, the sha256 of --init or None): checked before any run directory
    is touched; a weight-pruned init sets ``keep_zeros`` so config.json records what the run does."""
    if not cfg.init:
        return cfg, None
    ckpt = _load_init(cfg.init)
    check_init_arch(cfg, ckpt["arch"], num_classes)
    if (ckpt.get("pruning") or {}).get("rule") == "weight" and not cfg.keep_zeros:
        cfg = dataclasses.replace(cfg, keep_zeros=True)
    return cfg, sha256_file(cfg.init)


def init_student(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(student in train mode, its arch, provenance {init, init_sha256, pruning}) of an --init run; with
    ``keep_zeros`` every zero conv weight is masked."""
    ckpt = _load_init(cfg.init)
    check_init_arch(cfg, ckpt["arch"], num_classes)
    try:
        student = model_from_checkpoint(ckpt, cfg.init).train()
    except CheckpointError as e:
        raise UserError(f"--init: {e}") from None
    if cfg.keep_zeros:
        restore_weight_masks(student)
    record = {"init": cfg.init, "init_sha256": sha256_file(cfg.init), "pruning": ckpt.get("pruning")}
    return student, dict(ckpt["arch"]), record


def load_regressor(objective: Objective, path: str) -> str:
    """Load the feature-KD regressor R of the checkpoint at ``path`` (its ``aux``) into ``objective``'s and return
    that checkpoint's sha256; one UserError line when ``objective`` is not feature KD, the checkpoint has no R, or R's
    shape (teacher channels x student channels) differs."""
    regressor = objective.aux_modules().get("regressor")
    if regressor is None:
        raise UserError("--regressor-init starts feature KD's regressor; use a feature_kd method or drop it")
    try:
        state = load_checkpoint(path)["aux"].get("regressor")
    except CheckpointError as e:
        raise UserError(f"--regressor-init: {e}") from None
    if state is None:
        raise UserError(f"--regressor-init {path} holds no feature-KD regressor; give a feature_kd run's checkpoint")
    if state["weight"].shape != regressor.weight.shape:
        raise UserError(f"--regressor-init {path} has a regressor of shape {tuple(state['weight'].shape)} but this "
                        f"student/teacher pair needs {tuple(regressor.weight.shape)}; drop --regressor-init")
    regressor.load_state_dict(state)
    return sha256_file(path)
