"""CIFAR ResNets of He et al. 2016 (docs/reference.md "Models"): 3 stages of BasicBlocks, depth 6n+2.

Stage widths are w, 2w, 4w (w = 16 in the paper: 16/32/64 channels). The two stride-2 blocks use the
parameter-free "option A" shortcut of the rethinking-network-pruning ResNet: a 2x2 average pool then
zero channels appended. ``shortcut="pad"`` (default) lets gradients flow through it;
``shortcut="pad-detached"`` detaches it as that repository does (its ``downsample_basic_block`` concatenates
``x.data``), so at those two blocks the gradient reaches the input only through the residual branch;
``shortcut="conv"`` gives the 1x1-conv + BN projection (He et al. option B, Li et al.'s trainer).
ResNet-56 with w = 16 and option A has 853,018 parameters (0.85 M; docs/reference.md "Models" rounds it to 0.86 M).
With option A and a CIFAR-100 head: ResNet-56 858,868; ResNet-110 1,727,962 (CIFAR-10) / 1,733,812 (CIFAR-100).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UserError

SHORTCUTS = ("pad", "pad-detached", "conv")


class PadShortcut(nn.Module):
    """Option A: x -> concat(avgpool2x2(x), zeros) so that channels go from c_in to c_out; with
    ``detach`` no gradient flows back through it (d shortcut / d x = 0)."""

    def __init__(self, c_in: int, c_out: int, detach: bool = False):
        super().__init__()
        self.extra, self.detach = c_out - c_in, detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x.detach() if self.detach else x, 2)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU. ReLUs are modules (not in-place) so
    hooks can read their outputs (NASWOT v2 needs them)."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str, inner: int | None = None):
        super().__init__()
        inner = c_out if inner is None else inner  # conv1's width; smaller after pruning inside the branch
        self.conv1 = nn.Conv2d(c_in, inner, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(inner, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut in ("pad", "pad-detached"):
            self.shortcut = PadShortcut(c_in, c_out, detach=shortcut == "pad-detached")
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs. ``forward`` gives logits; ``forward_features`` the last
    feature map (N, 4w, 8, 8) before pooling, used by feature distillation (docs/reference.md "Objectives").
    ``block_widths`` (3n ints, None = unpruned) gives each block's inner width (conv1/bn1/conv2-input), which
    L1-norm filter pruning and network slimming shrink (training/pruning/structured.py); the residual stream keeps
    w/2w/4w."""

    def __init__(self, depth: int, num_classes: int, width: int = 16, shortcut: str = "pad",
                 block_widths: list[int] | None = None):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise UserError(f"ResNet depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110), got {depth}")
        if shortcut not in SHORTCUTS:
            raise UserError(f"shortcut must be one of {', '.join(SHORTCUTS)}; got {shortcut!r}")
        n = (depth - 2) // 6
        if block_widths is not None and (len(block_widths) != 3 * n or min(block_widths) < 1):
            raise UserError(f"block_widths needs {3 * n} positive widths for ResNet-{depth}, got {block_widths}")
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        blocks: list[nn.Module] = []
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                inner = None if block_widths is None else block_widths[stage * n + i]
                blocks.append(BasicBlock(c_in, c_out, stride, shortcut, inner))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.feature_channels = c_in
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.relu(self.bn1(self.conv1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def resnet_builder(depth: int) -> Callable[..., nn.Module]:
    """The registry's builder of CIFAR ResNet-``depth``: ``build(num_classes, **kwargs)``."""
    def build(num_classes: int, **kwargs) -> nn.Module:
        return CifarResNet(depth, num_classes, **kwargs)

    build.__doc__ = f"CIFAR ResNet-{depth} (He et al. 2016)."
    return build
