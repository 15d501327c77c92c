"""Structured pruning (docs/reference.md "Pruning as the reference code ran it"): L1-norm filter pruning (Li et al.
2017) and Network Slimming (Liu et al. 2017),
following rethinking-network-pruning's ``cifar/l1-norm-pruning`` and ``cifar/network-slimming`` rules.

Both choose, per prunable BN layer, the channels to drop; Torch-Pruning's DependencyGraph removes each channel
with everything coupled to it (the conv that writes it, the conv/Linear that reads it, a DenseNet layer's
``ChannelSelect``). Each function takes a model and its ``arch`` dict and returns a new pruned model plus the
``arch`` that rebuilds it through ``build_model`` (the input model is left untouched).

Prunable layers: ResNets only inside residual branches (each block's bn1, i.e. conv1's filters; the residual
stream is never pruned), VGG every BN, DenseNet every BN (a layer's view of the stream, never the stream),
PreResNet every BN (bn1 and the final BN: a view of the stream; bn2, bn3: conv1's and conv2's filters).
"""
from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from training.errors import UserError
from training.models.registry import build_model
from training.models.resnet import CifarResNet
from training.models.slimming import ChannelSelect, DenseNet, PreResNet, SlimVGG
from training.models.wrap import unwrap_model
from training.runtime.optional import require

# Li et al. 2017 Table 2 presets, as res56prune.py / res110prune.py: skipped layers are numbered like the
# reference (convs counted from 1 = stem, so block b's conv1 is layer 2b + 2), ratios are per-stage *remaining*
# fractions (1 - the reference's prune_prob).
L1_PRESETS: dict[tuple[str, str], tuple[tuple[int, ...], tuple[float, float, float]]] = {
    ("resnet56", "A"): ((16, 20, 38, 54), (0.9, 0.9, 0.9)),
    ("resnet56", "B"): ((16, 18, 20, 34, 38, 54), (0.4, 0.7, 0.9)),
    ("resnet110", "A"): ((36,), (0.5, 1.0, 1.0)),
    ("resnet110", "B"): ((36, 38, 74), (0.5, 0.6, 0.7)),
}


def check_ratio(ratio: float, what: str) -> float:
    """A remaining ratio must lie in (0, 1] (NaN refused)."""
    if not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:  # NaN fails both comparisons
        raise UserError(f"{what} remaining ratio must be in (0, 1], got {ratio}; pass e.g. 0.5")
    return float(ratio)


def _torch_pruning():
    """Torch-Pruning (the study extra), imported on first use."""
    return require("torch_pruning", "torch_pruning", "structured pruning (Torch-Pruning)")


@functools.cache
def _select_pruner():
    """A Torch-Pruning handler for ChannelSelect (its base class needs torch_pruning, imported on first use)."""
    tp = _torch_pruning()

    class SelectPruner(tp.pruner.BasePruningFunc):
        """Torch-Pruning handler for ChannelSelect: its outputs are entries of ``index`` (uncoupled from its input,
        the DenseNet stream, which is never pruned)."""

        def prune_out_channels(self, layer: ChannelSelect, idxs: Sequence[int]) -> nn.Module:
            keep = torch.ones(layer.index.numel(), dtype=torch.bool, device=layer.index.device)
            keep[list(idxs)] = False
            layer.index = layer.index[keep]
            return layer

        def prune_in_channels(self, layer: ChannelSelect, idxs: Sequence[int]) -> nn.Module:
            raise UserError("the DenseNet stream is never pruned; prune a layer's ChannelSelect/BN instead")

        def get_out_channels(self, layer: ChannelSelect) -> int:
            return layer.index.numel()

        def get_in_channels(self, layer: ChannelSelect) -> int:
            return layer.channels

    return SelectPruner()


def prunable_bns(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """(name, BN) of every BN whose channels structured pruning may remove, in module order."""
    model = unwrap_model(model)
    if isinstance(model, CifarResNet):
        return [(f"blocks.{i}.bn1", b.bn1) for i, b in enumerate(model.blocks)]
    if isinstance(model, (SlimVGG, DenseNet, PreResNet)):
        return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    raise UserError(f"{type(model).__name__} has no structured pruning rule; use a ResNet, vgg19 or densenet40")


def _widths(model: nn.Module, arch: dict) -> dict:
    """``arch`` updated with the per-layer widths of a (pruned) model."""
    if isinstance(model, CifarResNet):
        return dict(arch, block_widths=[b.bn1.num_features for b in model.blocks])
    if isinstance(model, SlimVGG):
        return dict(arch, cfg=["M" if isinstance(m, nn.MaxPool2d) else m.out_channels
                               for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))])
    return dict(arch, cfg=[bn.num_features for _, bn in prunable_bns(model)])


def prune_channels(model: nn.Module, arch: dict, drop: dict[str, Sequence[int]]) -> tuple[nn.Module, dict]:
    """Remove channels ``drop[name]`` of each prunable BN ``name`` (with its coupled layers, via Torch-Pruning).
    Returns the model rebuilt from the new ``arch`` with the pruned weights loaded strictly, so the arch is
    proven to rebuild it."""
    pruned = copy.deepcopy(unwrap_model(model)).eval()
    bns = dict(prunable_bns(pruned))
    if set(drop) - set(bns):
        raise UserError(f"not prunable layers: {sorted(set(drop) - set(bns))}; choose among {', '.join(bns)}")
    for name, idxs in drop.items():
        if len(idxs) >= bns[name].num_features:
            raise UserError(f"pruning would empty layer {name}; keep a larger ratio")
    device = next(pruned.parameters()).device
    tp = _torch_pruning()
    dg = tp.DependencyGraph().build_dependency(pruned, example_inputs=torch.zeros(1, 3, 32, 32, device=device),
                                               customized_pruners={ChannelSelect: _select_pruner()})
    for name, idxs in drop.items():
        if len(idxs):
            dg.get_pruning_group(bns[name], tp.prune_batchnorm_out_channels, idxs=sorted(int(i) for i in idxs)).prune()
    new_arch = _widths(pruned, arch)
    kwargs = {k: v for k, v in new_arch.items() if k not in ("name", "num_classes")}
    rebuilt = build_model(new_arch["name"], new_arch["num_classes"], **kwargs).to(device)
    rebuilt.load_state_dict(pruned.state_dict())
    rebuilt.train(unwrap_model(model).training)
    return rebuilt, new_arch


def l1_filter_prune(model: nn.Module, arch: dict, remaining: Sequence[float],
                    skip: Sequence[int] = ()) -> tuple[nn.Module, dict]:
    """Li et al. 2017 on a CIFAR ResNet: block b's conv1 (in stage s = b // n) keeps its
    int(c * remaining[s]) filters of largest L1 norm sum|W[j]|, with bn1 and conv2's matching input channels;
    blocks whose conv1 layer number 2b + 2 is in ``skip`` are left whole (the reference's numbering)."""
    base = unwrap_model(model)
    if not isinstance(base, CifarResNet):
        raise UserError(f"L1-norm filter pruning has a rule for ResNets only, not {arch.get('name')!r}")
    if len(remaining) != 3:
        raise UserError(f"L1-norm pruning needs 3 per-stage remaining ratios, got {list(remaining)}")
    ratios = [check_ratio(r, f"stage {s + 1}") for s, r in enumerate(remaining)]
    n = len(base.blocks) // 3
    drop: dict[str, list[int]] = {}
    for b, block in enumerate(base.blocks):
        if 2 * b + 2 in skip:
            continue
        c = block.conv1.out_channels
        keep = int(c * ratios[b // n])  # the reference's int(c * (1 - prune_prob)), rounding down
        if keep < 1:
            raise UserError(f"stage {b // n + 1} ratio {ratios[b // n]} keeps no filter of blocks.{b}.conv1 "
                            f"({c} filters); use a ratio >= 1/{c}")
        order = torch.argsort(block.conv1.weight.detach().abs().sum((1, 2, 3)), descending=True, stable=True)
        drop[f"blocks.{b}.bn1"] = order[keep:].tolist()
    return prune_channels(model, arch, drop)


def l1_preset(name: str, preset: str) -> tuple[tuple[float, float, float], tuple[int, ...]]:
    """(per-stage remaining ratios, skip list) of Li et al.'s pruned-A / pruned-B networks."""
    if (name, preset) not in L1_PRESETS:
        choices = ", ".join(f"{a}/{p}" for a, p in L1_PRESETS)
        raise UserError(f"no L1-norm preset {preset!r} for {name!r}; choose one of: {choices}")
    skip, ratios = L1_PRESETS[(name, preset)]
    return ratios, skip


def add_slimming_subgradient(model: nn.Module, s: float) -> None:
    """Network-slimming sparsity step, called after ``backward()``: grad(gamma) += s * sign(gamma) for every
    prunable BN gamma (the subgradient of the penalty s * sum|gamma|)."""
    if not isinstance(s, (int, float)) or not 0.0 < s < math.inf:
        raise UserError(f"the slimming sparsity s must be a positive number, got {s}; pass e.g. 1e-5")
    with torch.no_grad():
        for _, bn in prunable_bns(model):
            if bn.weight.grad is not None:
                bn.weight.grad.add_(torch.sign(bn.weight), alpha=s)


def slimming_keep_counts(gammas: Sequence[torch.Tensor], remaining: float) -> list[torch.Tensor]:
    """The reference's global rule (vggprune.py / resprune.py / denseprune.py): sort all |gamma| ascending into y,
    threshold t = y[int(total * percent)] with percent = 1 - remaining, keep channel j of a layer iff |gamma_j| > t.
    ``percent`` is rounded to 12 decimals so that it is the float the reference is given (1 - 0.8 -> 0.2), and the
    product keeps the reference's float rounding (180 * 0.7 -> 125). remaining = 1 keeps everything (the
    reference rule would still drop the smallest). Returns one boolean keep-mask per layer."""
    remaining = check_ratio(remaining, "network slimming")
    if remaining == 1.0:
        return [torch.ones_like(g, dtype=torch.bool) for g in gammas]
    flat = torch.cat([g.detach().abs().flatten() for g in gammas])
    threshold = torch.sort(flat).values[int(flat.numel() * round(1.0 - remaining, 12))]
    return [g.detach().abs() > threshold for g in gammas]


def network_slimming_prune(model: nn.Module, arch: dict, remaining: float) -> tuple[nn.Module, dict]:
    """Liu et al. 2017: one global |gamma| threshold over all prunable BNs (``slimming_keep_counts``), then the
    channels below it removed structurally. A layer the threshold would empty is refused (UserError naming it;
    the reference has no guard and would build an invalid network)."""
    bns = prunable_bns(model)
    masks = slimming_keep_counts([bn.weight for _, bn in bns], remaining)
    for (name, _), keep in zip(bns, masks):
        if not keep.any():
            raise UserError(f"the slimming threshold at remaining {remaining} would empty layer {name}; "
                            "train with sparsity longer or keep a larger ratio")
    drop = {name: (~keep).nonzero().flatten().tolist() for (name, _), keep in zip(bns, masks)}
    return prune_channels(model, arch, drop)


def count_params_macs(model: nn.Module, image_size: int = 32) -> tuple[int, int]:
    """(parameters, multiply-accumulates of conv and Linear layers for one image), the quantities Li et al. 2017
    report (their FLOPs of ResNet-56 = 1.25e8 = these MACs); counted by torch's FlopCounterMode (FLOPs / 2)."""
    model = unwrap_model(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    model.train(was_training)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2
