"""User-defined models and independent helpers for the API tests (importable as test_api_models:small_net by
the CLI tests, which put this folder on sys.path). No tests here."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SmallNet(nn.Module):
    """conv -> BN -> BN (a chain fuse folds twice), conv -> BN, Linear -> BatchNorm1d, and a plain head."""

    def __init__(self, num_classes: int = 10, width: int = 6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(width)
        self.bn1b = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.fc1 = nn.Linear(width, 12)
        self.bn3 = nn.BatchNorm1d(12)
        self.fc2 = nn.Linear(12, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1b(self.bn1(self.conv1(x))))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.bn3(self.fc1(self.features(x)))))


class DynamicNet(SmallNet):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if h.sum() > 0:
            h = h * 1.0
        return self.fc2(F.relu(self.bn3(self.fc1(h))))


class SharedNet(SmallNet):
    """conv2 -> bn2 called twice: fuse would fold the shared module at both call sites."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1b(self.bn1(self.conv1(x))))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc2(F.relu(self.bn3(self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1)))))


def small_net(num_classes: int = 10, width: int = 6, seed: int = 0) -> nn.Module:
    """A factory for --model test_api_models:small_net (seeded, so the CLI and the test build the same net)."""
    torch.manual_seed(seed)
    return SmallNet(num_classes, width)


def pooled_net(num_classes: int = 10) -> nn.Module:
    """A factory whose output is not logits: (N, C, H, W) feature maps."""
    return nn.Conv2d(3, num_classes, 3)


def calibrated(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """``model`` with BN running statistics from real images (not the identity init), in eval mode."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model.eval()


def li_directions(model: nn.Module, seed: int = 123, count: int = 2) -> list[dict[str, torch.Tensor]]:
    """Li et al.'s directions written out independently: one generator, every parameter in order drawn from
    N(0, 1); tensors with >= 2 dims scaled filter by filter to the weight's filter norms; 1-D tensors zero."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        d = {}
        for name, w in model.named_parameters():
            r = torch.randn(w.shape, generator=g)
            if w.dim() > 1:
                for f in range(w.shape[0]):
                    r[f] = r[f] * w[f].detach().norm() / (r[f].norm() + 1e-10)
            else:
                r = torch.zeros_like(w)
            d[name] = r
        out.append(d)
    return out


def naive_loss(model: nn.Module, directions, coords, x: torch.Tensor, y: torch.Tensor, loss=F.cross_entropy) -> float:
    """A copy of the model with sum c_i d_i added to its parameters by hand, evaluated in eval mode."""
    import copy

    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            for c, d in zip(coords, directions):
                p.add_(c * d[name])
        return float(loss(m(x), y))
