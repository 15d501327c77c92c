"""BatchNorm folded into the preceding convolution or linear layer, re-parametrised per grid point.

In eval mode with frozen statistics, layer -> BN is exactly one layer with
    W' = W * s,   b' = (b - mu) * s + beta,   s = gamma / sqrt(var + eps)   (per output channel),
so every surface point can run the cheaper fused network. ``torch.fx.experimental.optimization.fuse``
builds the fused graph once (Conv1d/2d/3d -> BatchNorm1d/2d/3d and Linear -> BatchNorm1d, where the layer's
output feeds only the BN and the BN tracks running statistics); every other module of any model is kept as
it is. fuse has no way to re-fold new weights into that graph, so the per-point re-folding below is ours: the
formula above applied to the perturbed state, pair by pair in fuse's own order (a BN that follows a fused
pair folds into the already folded weights). A model that torch.fx cannot trace, or that calls a folded
module at more than one place, raises ``NotFoldable`` and is evaluated unfolded (landscape.engine).
"""
from __future__ import annotations

import copy
import warnings
from collections import Counter

import torch
import torch.fx
from torch import nn

with warnings.catch_warnings():  # the module's import touches torch.jit.script, which warns it is deprecated
    warnings.simplefilter("ignore", FutureWarning)
    from torch.fx.experimental.optimization import fuse, matches_module_pattern

# fuse's patterns, in fuse's order.
PATTERNS = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d),
            (nn.Linear, nn.BatchNorm1d))


class NotFoldable(Exception):
    """torch.fx cannot trace the model, or fuse's result would not be the model's function."""


def _trace(model: nn.Module) -> torch.fx.GraphModule:
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as e:  # FX raises many types (TraceError, TypeError, AttributeError, ...) on dynamic code
        raise NotFoldable(f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: {e})") from None


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, bn) module names that fuse folds, in the order it folds them (fuse's own loop, run on a copy
    of the traced graph)."""
    traced = _trace(model)
    modules = dict(traced.named_modules())
    graph = copy.deepcopy(traced.graph)
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    pairs = []
    for pattern in PATTERNS:
        for node in graph.nodes:
            if (matches_module_pattern(pattern, node, modules) and len(node.args[0].users) == 1
                    and modules[node.target].track_running_stats):
                layer, bn = node.args[0].target, node.target
                if calls[layer] > 1 or calls[bn] > 1:  # fuse would replace the module at every call site
                    raise NotFoldable(f"module {layer if calls[layer] > 1 else bn} is called more than once")
                pairs.append((layer, bn))
                node.replace_all_uses_with(node.args[0])
                graph.erase_node(node)
    return pairs


class FoldedNetwork:
    """A BN-folded copy of ``model`` whose weights are set from any state dict of the original model."""

    def __init__(self, model: nn.Module):
        model = copy.deepcopy(model).eval()
        self.pairs = conv_bn_pairs(model)
        named = dict(model.named_modules())
        self.eps = {bn: named[bn].eps for _, bn in self.pairs}
        self.weight_dims = {layer: named[layer].weight.dim() for layer, _ in self.pairs}
        self.net = fuse(model)
        self.net.requires_grad_(False)
        self._index()

    def _index(self) -> None:
        # Parameters and floating-point buffers of the fused network (the BNs left unfused keep theirs).
        self.params = {**dict(self.net.named_parameters()),
                       **{k: v for k, v in self.net.named_buffers() if v.is_floating_point()}}

    def to(self, device: torch.device, memory_format=torch.channels_last) -> FoldedNetwork:
        self.net = self.net.to(device).to(memory_format=memory_format)  # applies to 4-D/5-D tensors only
        self._index()
        return self

    def fold(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The fused network's tensors for ``state`` (names of the original model), by the formula above.
        Tensors may carry one leading dimension more than the model's (P grid points stacked)."""
        out: dict[str, torch.Tensor] = {}
        for layer, bn in self.pairs:
            w, b0 = (
                out.get(f"{layer}.weight", state[f"{layer}.weight"]),
                out.get(f"{layer}.bias", state.get(f"{layer}.bias")),
            )
            s = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + self.eps[bn])
            out[f"{layer}.weight"] = w * s.reshape(*s.shape, *[1] * (self.weight_dims[layer] - 1))
            shift = (b0 - state[f"{bn}.running_mean"]) if b0 is not None else -state[f"{bn}.running_mean"]
            out[f"{layer}.bias"] = shift * s + state[f"{bn}.bias"]
        return {name: out[name] if name in out else state[name] for name in self.params}

    @torch.no_grad()
    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Set the fused weights from ``state`` (names of the original model)."""
        for name, t in self.fold(state).items():
            self.params[name].copy_(t)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
