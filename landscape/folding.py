"""BatchNorm folded into the preceding convolution, re-parametrised per grid point.

In eval mode with frozen statistics, conv -> BN is exactly one conv with
    W' = W * s,   b' = (b - mu) * s + beta,   s = gamma / sqrt(var + eps)   (per output channel),
so every surface point can run the cheaper fused network. ``torch.fx.experimental.optimization.fuse``
builds the fused graph once; it has no way to re-fold new weights into that graph, so the per-point
re-folding below is ours (the formula above, applied to the perturbed state).
"""
from __future__ import annotations

import copy
import warnings

import torch
import torch.fx
from torch import nn

with warnings.catch_warnings():  # the module's import touches torch.jit.script, which warns it is deprecated
    warnings.simplefilter("ignore", FutureWarning)
    from torch.fx.experimental.optimization import fuse


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) module names where a BatchNorm2d directly and solely consumes a Conv2d (fuse's pattern)."""
    traced = torch.fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    pairs = []
    for node in traced.graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), nn.BatchNorm2d):
            src = node.args[0]
            if (isinstance(src, torch.fx.Node) and src.op == "call_module"
                    and isinstance(modules.get(src.target), nn.Conv2d) and len(src.users) == 1):
                pairs.append((src.target, node.target))
    return pairs


class FoldedNetwork:
    """A BN-folded copy of ``model`` whose weights are set from any state dict of the original model."""

    def __init__(self, model: nn.Module):
        model = copy.deepcopy(model).eval()
        self.pairs = conv_bn_pairs(model)
        self.eps = {bn: dict(model.named_modules())[bn].eps for _, bn in self.pairs}
        self.net = fuse(model)
        self.params = dict(self.net.named_parameters())
        self.net.requires_grad_(False)

    def to(self, device: torch.device, memory_format=torch.channels_last) -> "FoldedNetwork":
        self.net = self.net.to(device).to(memory_format=memory_format)
        self.params = dict(self.net.named_parameters())
        return self

    def fold(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The fused network's parameters for ``state`` (names of the original model), by the formula above.
        Tensors may carry one leading dimension more than the model's (P grid points stacked)."""
        out = {}
        for conv, bn in self.pairs:
            s = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + self.eps[bn])
            out[f"{conv}.weight"] = state[f"{conv}.weight"] * s[..., None, None, None]
            b0 = state.get(f"{conv}.bias")
            shift = (b0 - state[f"{bn}.running_mean"]) if b0 is not None else -state[f"{bn}.running_mean"]
            out[f"{conv}.bias"] = shift * s + state[f"{bn}.bias"]
        return {name: out[name] if name in out else state[name] for name in self.params}

    @torch.no_grad()
    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Set the fused weights from ``state`` (names of the original model)."""
        for name, t in self.fold(state).items():
            self.params[name].copy_(t)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
