"""Weight-level magnitude pruning (Han et al. 2015) as rethinking-network-pruning's ``cifar/weight-level``
(docs/reference.md "Pruning as the reference code ran it"), with ``torch.nn.utils.prune`` masks.

One global threshold over the weights of every Conv2d (Linear and BN untouched): the int(total * p) smallest |w|
are masked, p = 1 - r rounded to 12 decimals (``prune.global_unstructured`` with L1Unstructured; the reference
masks |w| <= its y[int(total * p)], i.e. one weight more). While fine-tuning, the masks stay as forward pre-hooks
(weight = weight_orig * weight_mask), so a pruned weight is exactly zero whatever SGD, momentum and weight decay
do to ``weight_orig``.

Checkpoints hold plain weights (``finalize_weight_masks`` = ``prune.remove``), so every package loads a pruned
checkpoint like any other (same ``arch``); a fine-tuning run calls ``restore_weight_masks``, which rebuilds the
masks as weight != 0, the reference's fine-tuning rule (its cifar_finetune.py masks gradients with |w| > 0).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from training.errors import UserError
from training.models.wrap import unwrap_model
from training.pruning.structured import check_ratio


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    convs = [m for m in unwrap_model(model).modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise UserError(f"{type(model).__name__} has no Conv2d layer, so weight-level pruning has nothing to prune")
    return convs


def magnitude_prune(model: nn.Module, arch: dict, remaining: float) -> tuple[nn.Module, dict]:
    """A copy of ``model`` with the int(total * (1 - r)) smallest |w| over all conv weights together masked
    (``torch.nn.utils.prune`` masks; 1 - r rounded to 12 decimals); ``arch`` is returned unchanged, as
    the shapes do not change."""
    remaining = check_ratio(remaining, "weight-level")
    pruned = copy.deepcopy(unwrap_model(model))
    convs = _convs(pruned)
    total = sum(c.weight.numel() for c in convs)
    prune.global_unstructured([(c, "weight") for c in convs], pruning_method=prune.L1Unstructured,
                              amount=int(total * round(1.0 - remaining, 12)))
    return pruned, dict(arch)


def weight_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """name -> boolean keep-mask of every masked conv weight."""
    return {n: m.weight_mask.bool() for n, m in unwrap_model(model).named_modules()
            if isinstance(m, nn.Conv2d) and hasattr(m, "weight_mask")}


def finalize_weight_masks(model: nn.Module) -> nn.Module:
    """Fold every mask into a plain ``weight`` (``prune.remove``): the state_dict has the unpruned keys."""
    for conv in _convs(model):
        if prune.is_pruned(conv) and hasattr(conv, "weight_mask"):
            prune.remove(conv, "weight")
    return model


def restore_weight_masks(model: nn.Module) -> nn.Module:
    """Re-attach masks weight != 0 to every conv of a model loaded from a weight-pruned checkpoint."""
    for conv in _convs(model):
        if not hasattr(conv, "weight_mask"):
            prune.custom_from_mask(conv, "weight", mask=conv.weight.detach() != 0)
    return model


def conv_sparsity(model: nn.Module) -> float:
    """Fraction of conv weights that are exactly zero (effective weights, masks applied)."""
    convs = _convs(model)
    return sum(int((c.weight == 0).sum()) for c in convs) / sum(c.weight.numel() for c in convs)


def _masked_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(f"{n}." if n else "", m) for n, m in unwrap_model(model).named_modules()
            if isinstance(m, nn.Conv2d) and hasattr(m, "weight_mask")]


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict of ``model`` with every masked conv stored as a plain ``weight`` = weight_orig * weight_mask
    (the effective weight, pruned entries exactly 0), so the checkpoint loads into the unmasked architecture.
    The product is taken here, not read from ``conv.weight``, which the mask hook only refreshes at forward."""
    state = unwrap_model(model).state_dict()
    for prefix, conv in _masked_convs(model):
        del state[prefix + "weight_orig"], state[prefix + "weight_mask"]
        state[prefix + "weight"] = (conv.weight_orig * conv.weight_mask).detach().clone()
    return state


def load_plain_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a ``plain_state_dict`` into ``model`` strictly: a masked conv's ``weight`` goes into ``weight_orig`` and
    the model keeps its own masks (those of the run's --init)."""
    state = dict(state)
    for prefix, conv in _masked_convs(model):
        state[prefix + "weight_orig"] = state.pop(prefix + "weight")
        state[prefix + "weight_mask"] = conv.weight_mask
    unwrap_model(model).load_state_dict(state)
