"""Batch augmentation on the device (docs/reference.md "Data", "Objectives").

``random_crop_flip``: the paper's baseline augmentation, RandomCrop(32, padding=4) + RandomHorizontalFlip,
drawn independently per image but done for the whole batch as one gather on uint8 tensors.
``cutmix``: the CutMix-PyTorch CIFAR batch transform (one box per batch, partner = a permutation).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


def crop_flip(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
              padding: int = 4) -> torch.Tensor:
    """out[n] = hflip?(zero_pad(images[n], padding)[:, top[n]:top[n]+H, left[n]:left[n]+W]) as one gather.

    ``images`` (N, C, H, W) of any dtype; ``top``/``left`` int64 (N,) in [0, 2*padding]; ``flip`` bool (N,)."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dev = images.device
    rows = top.view(n, 1) + torch.arange(h, device=dev)  # (N, H)
    cols = left.view(n, 1) + torch.arange(w, device=dev)  # (N, W)
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    return padded[
        torch.arange(n, device=dev).view(n, 1, 1, 1),
        torch.arange(c, device=dev).view(1, c, 1, 1),
        rows.view(n, 1, h, 1),
        cols.view(n, 1, 1, w),
    ]


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Per-image random 4-px zero-pad crop and horizontal flip (p = 0.5), drawn from ``generator``
    (which must live on the images' device)."""
    n, dev = images.shape[0], images.device
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    return crop_flip(images, top, left, flip, padding)


class Targets(NamedTuple):
    """Labels of a (possibly mixed) batch: the loss is lam*CE(s, a) + (1-lam)*CE(s, b).

    ``weight`` multiplies this process's loss so that DDP's mean over W ranks is the mean over the global batch:
    W * n_local / n_global (1 when the ranks hold equal shares, and in a single process)."""

    a: torch.Tensor
    b: torch.Tensor
    lam: float | torch.Tensor  # a float32 device scalar inside a captured step (training.engine.graphs)
    weight: float = 1.0


def cutmix_box(h: int, w: int, lam: float, cy: int, cx: int) -> tuple[int, int, int, int]:
    """Box of side sqrt(1-lam) times the image side centred at (cy, cx), clipped at the borders:
    (y1, y2, x1, x2). Side lengths are truncated to int as in CutMix-PyTorch's ``rand_bbox``."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    y1, y2 = min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h)
    x1, x2 = min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w)
    return y1, y2, x1, x2


def cutmix(images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator, generator: torch.Generator,
           prob: float = 0.5, beta: float = 1.0) -> tuple[torch.Tensor, Targets]:
    """CutMix (Yun et al. 2019), CIFAR setting of CutMix-PyTorch (docs/reference.md "Objectives").

    With probability ``prob`` per batch: lam ~ Beta(beta, beta), partner = a random permutation of the
    batch, the box of ``cutmix_box`` is pasted from the partner, and lam is recomputed as
    1 - box_area / (H*W). Host-side scalars come from ``rng`` (numpy), the permutation from ``generator``
    (on the device), so no device-to-host sync is needed."""
    if beta <= 0 or rng.random() >= prob:
        return images, Targets(labels, labels, 1.0)
    lam = float(rng.beta(beta, beta))
    h, w = images.shape[-2:]
    y1, y2, x1, x2 = cutmix_box(h, w, lam, int(rng.integers(h)), int(rng.integers(w)))
    perm = torch.randperm(images.shape[0], generator=generator, device=images.device)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    return mixed, Targets(labels, labels[perm], lam)
