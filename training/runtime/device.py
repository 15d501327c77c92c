"""The device a command or a library call runs on: 'auto' = CUDA (this rank's GPU under torchrun) when visible, else the
CPU."""
from __future__ import annotations

import os

import torch

from training.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' = cuda (this rank's LOCAL_RANK under torchrun) if available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        local = os.environ.get("LOCAL_RANK")
        if name == "cuda" and local is not None:
            name = f"cuda:{int(local)}"
        elif local is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1 and name != f"cuda:{int(local)}":
            raise UserError(f"--device {name} under torchrun would put several ranks on one GPU; pass --device cuda "
                            "(each rank then takes cuda:LOCAL_RANK)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None
