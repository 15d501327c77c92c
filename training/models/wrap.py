"""Wrappers around a built network: torch.compile of its entry points, and the bare module under DDP / compile."""
from __future__ import annotations

import torch
from torch import nn


def compile_model(model: nn.Module, **options) -> nn.Module:
    """``torch.compile`` a network in place: its ``forward`` (``nn.Module.compile``, so state_dict keys keep no
    ``_orig_mod.`` prefix) and the ``forward_features`` / ``forward_head`` entry points that feature KD calls
    directly, which a compiled ``forward`` alone would leave eager. ``options`` go to ``torch.compile``."""
    model.compile(**options)
    for name in ("forward_features", "forward_head"):
        if hasattr(model, name):
            setattr(model, name, torch.compile(getattr(model, name), **options))
    return model


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel / torch.compile wrappers (their state_dict keys get prefixes)."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
