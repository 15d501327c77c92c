"""CIFAR PyramidNets (Han et al. 2017) as clovaai/CutMix-PyTorch defines them (docs/reference.md "Tables 4-5:
augmentation × KD").

Additive widening: with n blocks per stage (3 stages, 3n blocks), block k = 1..3n has ``round(d_k)`` inner
channels, d_k = 16 + k * alpha / (3n) accumulated in floating point as the reference does (Python ``round``);
a bottleneck block outputs 4x its inner width, a basic block 1x. Blocks are pre-activation without a ReLU at
their output: basic = BN-conv3x3(stride)-BN-ReLU-conv3x3-BN, bottleneck = BN-conv1x1-BN-ReLU-conv3x3(stride)-
BN-ReLU-conv1x1-BN. The shortcut is parameter-free: 2x2 average pool at the two stride-2 blocks, then zero
channels appended up to the block's output width. Stem: conv3x3 (3 -> 16) + BN, no ReLU; head: BN-ReLU (the map
``forward_features`` returns, before pooling), global average pool, linear. Depth = 9n+2 (bottleneck, CutMix's
default) or 6n+2 (basic).

The paper's sizes are the bottleneck ones (CutMix-PyTorch's default; basic blocks give PyramidNet-110 alpha 64
2,616,376 parameters, not 1.7 M). Exact parameter counts, CIFAR-10 / CIFAR-100 head (equal to the reference's):
PyramidNet-110 alpha 64: 1,696,410 / 1,725,300 (1.7 M); PyramidNet-200 alpha 240: 26,752,702 / 26,844,952
(26.8 M); PyramidNet-200 alpha 300: 40,211,050 / 40,324,900.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UserError


class ZeroPadShortcut(nn.Module):
    """x -> concat(avgpool2x2(x) if stride 2 else x, zeros) with c_out - c_in zero channels."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = F.avg_pool2d(x, 2, ceil_mode=True)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out)]


class PyramidBlock(nn.Module):
    """One pre-activation block (layout in the module docstring); output = residual + zero-padded shortcut."""

    def __init__(self, c_in: int, inner: int, stride: int, bottleneck: bool):
        super().__init__()
        self.c_out = inner * (4 if bottleneck else 1)
        if bottleneck:
            layers = [nn.BatchNorm2d(c_in), *_conv_bn(c_in, inner, 1), nn.ReLU(), *_conv_bn(inner, inner, 3, stride),
                      nn.ReLU(), *_conv_bn(inner, self.c_out, 1)]
        else:
            layers = [nn.BatchNorm2d(c_in), *_conv_bn(c_in, inner, 3, stride), nn.ReLU(), *_conv_bn(inner, inner, 3)]
        self.residual = nn.Sequential(*layers)
        self.shortcut = ZeroPadShortcut(c_in, self.c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class PyramidNet(nn.Module):
    """PyramidNet-``depth`` with widening factor ``alpha`` for 32x32 inputs. ``forward`` gives logits;
    ``forward_features`` the last feature map (N, C, 8, 8) after the final BN-ReLU, before pooling (feature KD)."""

    def __init__(self, depth: int, alpha: float, num_classes: int, bottleneck: bool = True):
        super().__init__()
        per_block = 9 if bottleneck else 6
        if depth < per_block + 2 or (depth - 2) % per_block:
            raise UserError(f"PyramidNet depth must be {per_block}n+2 with {'bottleneck' if bottleneck else 'basic'} "
                            f"blocks, got {depth}")
        if not alpha > 0:
            raise UserError(f"PyramidNet alpha must be a positive number, got {alpha}")
        n = (depth - 2) // per_block
        step = alpha / (3 * n)
        self.stem = nn.Sequential(*_conv_bn(3, 16, 3))
        blocks: list[PyramidBlock] = []
        c_in, dim = 16, 16.0
        for k in range(3 * n):
            dim += step
            blocks.append(PyramidBlock(c_in, int(round(dim)), 2 if k in (n, 2 * n) else 1, bottleneck))
            c_in = blocks[-1].c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn_final = nn.BatchNorm2d(c_in)
        self.relu_final = nn.ReLU()
        self.feature_channels = c_in
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # N(0, 2 / (k*k*c_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_final(self.bn_final(self.blocks(self.stem(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def pyramidnet(depth: int, alpha: float) -> Callable[..., nn.Module]:
    """The builder of PyramidNet-``depth`` alpha ``alpha`` (bottleneck unless ``bottleneck=False``)."""
    def build(num_classes: int, bottleneck: bool = True) -> nn.Module:
        return PyramidNet(depth, alpha, num_classes, bottleneck)

    build.__doc__ = f"PyramidNet-{depth} alpha {alpha:g} (CutMix-PyTorch definition)."
    return build


def pyramidnet_tiny(num_classes: int, depth: int = 11, alpha: float = 12.0, bottleneck: bool = True) -> nn.Module:
    """A tiny PyramidNet for tests and demos (default: one bottleneck block per stage, alpha 12)."""
    return PyramidNet(depth, alpha, num_classes, bottleneck)


PYRAMIDNETS: dict[str, Callable[..., nn.Module]] = {
    "pyramidnet110_a64": pyramidnet(110, 64),
    "pyramidnet200_a240": pyramidnet(200, 240),
    "pyramidnet200_a300": pyramidnet(200, 300),
    "pyramidnet_tiny": pyramidnet_tiny,
}
