"""VGG-19, DenseNet-40 and PreResNet-56 as defined in rethinking-network-pruning's ``cifar/network-slimming``
(docs/reference.md "Pruning as the reference code ran it").

Both take a ``cfg`` that rebuilds a pruned network, so a checkpoint's ``arch`` (name, num_classes, cfg) is enough
to load it through ``training.models.build_model``.

- ``SlimVGG``: ``cfg`` lists conv widths and "M" (2x2 max pool); every conv is conv3x3(no bias)+BN+ReLU; then a
  2x2 average pool (the 2x2 map left after four max pools becomes 1x1) and one Linear. BN gamma starts at 0.5,
  conv weights ~ N(0, 2/(9*c_out)), Linear ~ N(0, 0.01) as that code does. Unpruned VGG-19 has 20,035,018
  parameters with a CIFAR-10 head and 20,081,188 with a CIFAR-100 head.
- ``DenseNet``: depth 3n+4 (40: n = 12 layers per dense block), growth k = 12, no bottleneck, no compression,
  pre-activation layers BN-ReLU-conv3x3 whose output (k channels) is concatenated to their input, transitions
  BN-ReLU-conv1x1 (same width)+avgpool2, final BN-ReLU-avgpool-Linear. Each BN reads its input through a
  ``ChannelSelect`` (a buffer of kept channel indices, identity when unpruned): network slimming prunes a
  layer's *view* of the concatenated stream, never the stream. The reference selects after its BN; selecting
  first and keeping only the kept channels' BN parameters is the same function (BN is per channel) and leaves
  no dead parameters. ``cfg`` is the 3n+3 kept input widths (n layers + transition per block, final BN last).
  Unpruned DenseNet-40 has 1,059,298 parameters with a CIFAR-10 head and 1,100,428 with a CIFAR-100 head
  (the reference counts its selection vectors as parameters; these are buffers here).
- ``PreResNet``: the only ResNet of that folder, so the one its Table 2 ResNet-56 runs were made with: pre-activation
  bottleneck blocks, depth 9n+2 (56: n = 6 blocks per stage, 18 blocks), stage planes w/2w/4w (w = 16) and a stream
  of 4w/8w/16w channels. A block is select -> BN -> ReLU -> conv1x1 -> BN -> ReLU -> conv3x3 (stride) -> BN -> ReLU
  -> conv1x1 (back to the stream's 4 x planes) plus the shortcut (identity, or a bias-free 1x1 conv with the stride
  where the stream changes width); the head is select -> BN -> ReLU -> global average pool -> Linear. Every BN is
  prunable by network slimming: bn1 and the final BN through their ``ChannelSelect`` (a view of the stream), bn2
  and bn3 physically (conv1's and conv2's filters); conv3 always writes the whole stream. ``cfg`` is 3 widths per
  block (bn1's kept view, bn2, bn3) and the final BN's, as the reference's. Same initialisation as above (Linear
  keeps torch's default). Unpruned PreResNet-56 has 590,426 parameters with a CIFAR-10 head and 613,556 with a
  CIFAR-100 head (the reference's count, 593,130 / 616,260, adds its 2,704 selection entries).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UserError

VGG19_CFG: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                    512, 512, 512, 512)


def _init_slimming(model: nn.Module, linear: bool) -> None:
    """The network-slimming initialisation: conv ~ N(0, 2/(kh*kw*c_out)), BN gamma 0.5 / beta 0, and with
    ``linear`` (VGG; DenseNet keeps torch's default) Linear ~ N(0, 0.01) with zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear:
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class SlimVGG(nn.Module):
    """VGG with BN for 32x32 inputs; ``forward_features`` is the last conv block's map (N, cfg[-1], 2, 2)."""

    def __init__(self, num_classes: int, cfg: list | tuple | None = None):
        super().__init__()
        cfg = list(VGG19_CFG if cfg is None else cfg)
        if sum(v == "M" for v in cfg) != 4 or not all(v == "M" or (isinstance(v, int) and v > 0) for v in cfg):
            raise UserError(f"VGG cfg must hold positive widths and exactly four 'M' entries, got {cfg}")
        layers: list[nn.Module] = []
        c_in = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.feature_channels = c_in
        self.classifier = nn.Linear(c_in, num_classes)
        _init_slimming(self, linear=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.avg_pool2d(features, 2), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ChannelSelect(nn.Module):
    """x -> x[:, index]: the channels of the stream a layer still reads (``index`` is a buffer)."""

    def __init__(self, channels: int, kept: int):
        super().__init__()
        if not 0 < kept <= channels:
            raise UserError(f"a DenseNet layer must keep 1..{channels} input channels, got {kept}; fix cfg")
        self.channels = channels
        self.register_buffer("index", torch.arange(kept))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.index.numel() == self.channels:  # whole (indices only ever get removed): a view, no copy, that
            return x.narrow(1, 0, self.channels)  # still is an op of this module for Torch-Pruning's tracer
        return x.index_select(1, self.index)


class PreActConv(nn.Module):
    """select -> BN -> ReLU -> conv (k x k, no bias): a DenseNet layer's or transition's body."""

    def __init__(self, channels: int, kept: int, c_out: int, kernel: int):
        super().__init__()
        self.select = ChannelSelect(channels, kept)
        self.bn = nn.BatchNorm2d(kept)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(kept, c_out, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.relu(self.bn(self.select(x))))


class DenseLayer(PreActConv):
    """Output = concat(x, body(x)): the stream grows by ``growth`` channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, super().forward(x)), 1)


class Transition(PreActConv):
    """Body then a 2x2 average pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class SelectedHead(nn.Module):
    """The DenseNet / PreResNet trunk and head: conv1 -> blocks -> select -> BN -> ReLU (the feature map) -> global
    average pool -> Linear; the head reads ``kept`` of the final stream's ``channels`` through a ChannelSelect."""

    def _add_head(self, channels: int, kept: int, num_classes: int) -> None:
        self.select = ChannelSelect(channels, kept)
        self.bn = nn.BatchNorm2d(kept)
        self.relu = nn.ReLU()
        self.feature_channels = kept
        self.fc = nn.Linear(kept, num_classes)
        _init_slimming(self, linear=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.select(self.blocks(self.conv1(x)))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def densenet_default_cfg(depth: int = 40, growth: int = 12) -> list[int]:
    """Unpruned input widths: block b (b = 0, 1, 2) starts at 2k + b*n*k channels and each of its n layers adds
    k; the entry after each block's layers is its transition's (or, last, the final BN's) width."""
    n = (depth - 4) // 3
    return [2 * growth + b * n * growth + i * growth for b in range(3) for i in range(n + 1)]


class DenseNet(SelectedHead):
    """DenseNet-(3n+4) for 32x32 inputs; ``forward_features`` is the final BN-ReLU map (N, cfg[-1], 8, 8)."""

    def __init__(self, num_classes: int, depth: int = 40, growth: int = 12, cfg: list[int] | None = None):
        super().__init__()
        if (depth - 4) % 3 != 0 or depth < 7 or growth < 1:
            raise UserError(f"DenseNet depth must be 3n+4 (e.g. 40) and growth positive, got {depth}, {growth}")
        n = (depth - 4) // 3
        full = densenet_default_cfg(depth, growth)
        cfg = list(full if cfg is None else cfg)
        if len(cfg) != len(full):
            raise UserError(f"DenseNet-{depth} cfg needs {len(full)} widths (3n+3), got {len(cfg)}")
        self.conv1 = nn.Conv2d(3, 2 * growth, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for b in range(3):
            for i in range(n):
                j = b * (n + 1) + i
                stages.append(DenseLayer(full[j], cfg[j], growth, 3))
            if b < 2:
                j = b * (n + 1) + n
                stages.append(Transition(full[j], cfg[j], full[j], 1))
        self.blocks = nn.Sequential(*stages)
        self._add_head(full[-1], cfg[-1], num_classes)


def vgg19(num_classes: int, **kwargs) -> nn.Module:
    """VGG-19 of network slimming (20,035,018 parameters for 10 classes, 20,081,188 for 100)."""
    return SlimVGG(num_classes, **kwargs)


def densenet40(num_classes: int, **kwargs) -> nn.Module:
    """DenseNet-40, k = 12 (1,059,298 parameters for 10 classes, 1,100,428 for 100)."""
    return DenseNet(num_classes, **kwargs)


# Tiny members of both families for tests and demos (same code paths: the slimming rule, feature KD, cfg rebuild).
VGG_TINY_CFG: tuple = (8, 8, "M", 16, 16, "M", 32, 32, "M", 32, 32, "M", 32, 32)


def vgg_tiny(num_classes: int, **kwargs) -> nn.Module:
    """A 10-conv VGG of widths 8-32 (55,746 parameters for 10 classes), a toy stand-in for vgg19."""
    return SlimVGG(num_classes, **{"cfg": VGG_TINY_CFG, **kwargs})


def densenet_tiny(num_classes: int, **kwargs) -> nn.Module:
    """DenseNet-10, k = 6 (11,974 parameters for 10 classes), a toy stand-in for densenet40."""
    return DenseNet(num_classes, **{"depth": 10, "growth": 6, **kwargs})


class PreActBottleneck(nn.Module):
    """One pre-activation bottleneck block: ``widths`` = (bn1's kept view of the c_in-channel stream, conv1's
    filters, conv2's filters); conv3 writes ``c_out`` = 4 x planes channels."""

    def __init__(self, c_in: int, c_out: int, widths: Sequence[int], stride: int):
        super().__init__()
        kept, inner1, inner2 = widths
        self.select = ChannelSelect(c_in, kept)
        self.bn1 = nn.BatchNorm2d(kept)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(kept, inner1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner1)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(inner1, inner2, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(inner2)
        self.relu3 = nn.ReLU()
        self.conv3 = nn.Conv2d(inner2, c_out, 1, bias=False)
        self.shortcut: nn.Module = (nn.Identity() if stride == 1 and c_in == c_out
                                    else nn.Conv2d(c_in, c_out, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.bn1(self.select(x))))
        out = self.conv2(self.relu2(self.bn2(out)))
        out = self.conv3(self.relu3(self.bn3(out)))
        return out + self.shortcut(x)


def preresnet_default_cfg(depth: int = 56, width: int = 16) -> list[int]:
    """Unpruned widths: per block (the stream it reads, planes, planes), then the final BN's 16w. The stream is w
    before the first block and 4 x planes after each block."""
    n = (depth - 2) // 9
    cfg: list[int] = []
    stream = width
    for planes in (width, 2 * width, 4 * width):
        for _ in range(n):
            cfg += [stream, planes, planes]
            stream = 4 * planes
    return cfg + [stream]


class PreResNet(SelectedHead):
    """PreResNet-(9n+2) for 32x32 inputs; ``forward_features`` is the final BN-ReLU map (N, cfg[-1], 8, 8)."""

    def __init__(self, num_classes: int, depth: int = 56, width: int = 16, cfg: list[int] | None = None):
        super().__init__()
        if (depth - 2) % 9 != 0 or depth < 11 or width < 1:
            raise UserError(f"PreResNet depth must be 9n+2 (e.g. 56) and width positive, got {depth}, {width}")
        n = (depth - 2) // 9
        full = preresnet_default_cfg(depth, width)
        cfg = list(full if cfg is None else cfg)
        if len(cfg) != len(full) or min(cfg) < 1:
            raise UserError(f"PreResNet-{depth} cfg needs {len(full)} positive widths (3 per block + 1), got {cfg}")
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        for b in range(3 * n):
            stride = 2 if b in (n, 2 * n) else 1
            c_out = full[3 * b + 3] if b + 1 < 3 * n else full[-1]
            blocks.append(PreActBottleneck(full[3 * b], c_out, cfg[3 * b:3 * b + 3], stride))
        self.blocks = nn.Sequential(*blocks)
        self._add_head(full[-1], cfg[-1], num_classes)


def preresnet56(num_classes: int, **kwargs) -> nn.Module:
    """PreResNet-56 of network slimming (pre-activation bottleneck, 18 blocks; 590,426 parameters for 10 classes,
    613,556 for 100)."""
    return PreResNet(num_classes, **kwargs)


def preresnet_tiny(num_classes: int, **kwargs) -> nn.Module:
    """PreResNet-11 of width 4 (one bottleneck block per stage, stream 16/32/64 channels; 8,750 parameters for 10
    classes), a toy stand-in for preresnet56 as fast as the demo's ResNet-8."""
    return PreResNet(num_classes, **{"depth": 11, "width": 4, **kwargs})
