"""Checkpoint schema v1 (docs/reference.md "Training runs and checkpoints"): save atomically, load with
``weights_only=True`` and validate.

A checkpoint is a dict of tensors and plain containers:
``format="orthokd.checkpoint"``, ``version=1``, ``arch={name, num_classes, **kwargs}``, ``model``
(state_dict of the unwrapped model), ``method={name, teacher, teacher_sha256, ...}``, ``aux``
(method-owned modules, e.g. feature KD's regressor R), ``epoch``, ``step``, ``optimizer``, ``scheduler``,
``scaler``, ``rng``, ``config``, ``metrics`` (accuracies in %), ``provenance``, and ``content_sha256``:
sha256 over the tensors of ``model`` and ``aux`` (see ``content_sha256``), checked on load so a flipped
byte in a weight is refused instead of giving a silently wrong result (files written before the key
existed load without the check).
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.errors import CheckpointError
from training.models.registry import MODELS, build_model
from training.store.files import atomic_write

FORMAT = "orthokd.checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "arch", "model", "method", "epoch", "config")


def content_sha256(ckpt: dict[str, Any]) -> str:
    """sha256 over the tensors of ``ckpt["model"]`` and ``ckpt["aux"]``: for each tensor, in order of its
    name ("model.NAME", "aux.MODULE.NAME", sorted), the UTF-8 of "NAME|DTYPE|SHAPE\n" then its raw bytes
    (CPU, C-contiguous, native byte order)."""
    tensors = {f"model.{k}": v for k, v in ckpt["model"].items()}
    for module, state in (ckpt.get("aux") or {}).items():
        tensors.update({f"aux.{module}.{k}": v for k, v in state.items()})
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a schema-v1 checkpoint atomically (temp file in the same directory + ``os.replace``), with
    its ``content_sha256``. Serialized in memory first, so a full disk is an ``OSError`` of the write."""
    obj = {"format": FORMAT, "version": VERSION, **obj}
    obj["content_sha256"] = content_sha256(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getbuffer()))


def _load_error_detail(e: Exception) -> str:
    """The informative fragment of torch.load's (very long) error message."""
    msg = str(e)
    for marker in ("Unsupported global", "Unsupported operand", "invalid load key", "PytorchStreamReader", "EOF"):
        if marker in msg:
            return msg[msg.index(marker):].splitlines()[0].split(" was not")[0][:100]
    return type(e).__name__


def load_weights_only(path: str | os.PathLike, safe: tuple[Any, ...] = ()) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` (with ``safe`` globals allowed) without torch's
    warning about a foreign pickle's protocol: the caller refuses such a file in one line, so the warning's two lines
    before it would only say the same thing twice."""
    with warnings.catch_warnings(), torch.serialization.safe_globals(list(safe)):
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._weights_only_unpickler")
        return torch.load(path, map_location="cpu", weights_only=True)


DAMAGED_FIX = "use another checkpoint, or re-run its training with --overwrite to rewrite it"


def load_checkpoint(path: str | os.PathLike, damaged_fix: str = DAMAGED_FIX) -> dict[str, Any]:
    """Load and validate a checkpoint on the CPU. Every failure is one ``CheckpointError`` line;
    ``damaged_fix`` is the fix it names for a truncated or damaged file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (check the path; runs write OUT_DIR/last.pt and "
                              "ckpt_eXXX.pt)")
    try:
        ckpt = load_weights_only(path)
    except Exception as e:  # torch raises many types for truncated/foreign files
        detail = _load_error_detail(e)
        raise CheckpointError(f"cannot read checkpoint {path}: it is truncated, corrupt or not a weights-only torch "
                              f"file ({detail[:120]}); {damaged_fix}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an orthokd checkpoint (no format={FORMAT!r}); pass a file written by "
                              "training.train")
    if not isinstance(ckpt.get("version"), int) or ckpt["version"] > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {ckpt.get('version')!r}, newer than this code reads ({VERSION}); update "
            "orthokd"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks the keys {missing}; it is damaged: {damaged_fix}")
    arch = ckpt["arch"]
    if not isinstance(arch, dict) or arch.get("name") not in MODELS:
        raise CheckpointError(
            f"{path} has unknown architecture {arch.get('name') if isinstance(arch, dict) else arch!r}; known: "
            f"{', '.join(MODELS)}"
        )
    if "content_sha256" in ckpt and _content_hash_or_none(ckpt) != ckpt["content_sha256"]:
        raise CheckpointError(f"{path}: its tensors do not match the content_sha256 stored in it (bytes changed on "
                              "disk "
                              f"or in transfer); {damaged_fix}")
    return ckpt


def _content_hash_or_none(ckpt: dict[str, Any]) -> str | None:
    try:
        return content_sha256(ckpt)
    except (AttributeError, TypeError, RuntimeError):  # a damaged structure: not a dict of tensors
        return None


def check_finite(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse a state_dict with a NaN or infinite weight or buffer (one line naming the first such tensor)."""
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{path}: {bad} non-finite value(s) in {name} (a diverged run or a damaged file); "
                                  "use a checkpoint from before the divergence or retrain with a lower --lr")


def model_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """Rebuild the architecture recorded in ``arch`` and load ``model`` strictly (CPU, eval mode); refuse
    non-finite weights or buffers."""
    arch = dict(ckpt["arch"])
    name, num_classes = arch.pop("name"), arch.pop("num_classes")
    try:
        model = build_model(name, num_classes, **arch)
        model.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, TypeError, KeyError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        known = ("size mismatch", "Missing key", "Unexpected key")
        detail = next((ln for ln in lines if ln.startswith(known)), lines[0])
        raise CheckpointError(
            f"{path}: weights do not fit architecture {name} ({detail[:160]}); the file is damaged"
        ) from None
    check_finite(model.state_dict(), path)
    return model.eval()


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """``load_checkpoint`` + ``model_from_checkpoint``: the model in eval mode on the CPU and the dict."""
    ckpt = load_checkpoint(path)
    return model_from_checkpoint(ckpt, path), ckpt
