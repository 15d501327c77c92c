"""Scoring batches: drawn once from a seed and shared by every checkpoint (a paired design, the default), or drawn
per checkpoint (``model_seed``: NASWOT's harness scores each network on one random batch of its own)."""
from __future__ import annotations

import torch

from training.data.augment import random_crop_flip
from training.data.autoaugment import stream_seed
from training.data.datasets import ImageSet, normalize
from training.errors import UserError


def batch_indices(n: int, batch_size: int, batches: int, seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """The first batch_size * batches entries of torch.randperm(n) from a generator seeded with ``seed``, and
    that generator (its stream continues for a random transform)."""
    need = batch_size * batches
    if need > n:
        raise UserError(f"{batches} batches of {batch_size} need {need} images but the split has {n}; "
                        "lower --batches or --batch-size")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:need], g


def model_seed(seed: int, sha256: str) -> int:
    """The batch-draw seed of one checkpoint in ``--batch-mode per-model``: from (seed, the sha256 of its weights,
    training.store.checkpoint.content_sha256), so a model's batch does not depend on which other checkpoints are scored
    beside it or in which order, nor on file metadata (a retrained, bit-identical model draws the same batch)."""
    return stream_seed(seed, int(sha256[:15], 16))


def fixed_batches(images: torch.Tensor, batch_size: int, batches: int, seed: int) -> list[torch.Tensor]:
    """``draw_batches`` of inputs that are already normalized: batch b holds images[idx[b * batch_size :
    (b + 1) * batch_size]] with idx from ``batch_indices``."""
    idx, _ = batch_indices(len(images), batch_size, batches, seed)
    return list(images[idx].split(batch_size))


def draw_batches(
    images: ImageSet, batch_size: int, batches: int, seed: int, transform: str = "none"
) -> list[torch.Tensor]:
    """``batches`` disjoint batches of ``batch_size`` images: with
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)), batch b holds the images
    idx[b * batch_size : (b + 1) * batch_size], normalized as (x / 255 - mean) / std with the ImageSet's
    constants (the checkpoint's preset when loaded through training.data.checkpoint_split).
    ``transform="v1"`` first applies NASWOT's pad-4 random crop + flip, drawn from the same generator."""
    idx, g = batch_indices(len(images), batch_size, batches, seed)
    u8 = images.images[idx]
    if transform == "v1":
        u8 = random_crop_flip(u8, g)
    x = normalize(u8, images.mean, images.std)
    return list(x.split(batch_size))
