"""Fixed scoring batches: drawn once from a seed and shared by every checkpoint (a paired design)."""
from __future__ import annotations

import torch

from training.augment import random_crop_flip
from training.data import ImageSet, normalize
from training.errors import UserError


def draw_batches(images: ImageSet, batch_size: int, batches: int, seed: int, transform: str = "none") -> list[torch.Tensor]:
    """``batches`` disjoint batches of ``batch_size`` images: with
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)), batch b holds the images
    idx[b * batch_size : (b + 1) * batch_size], normalized as (x / 255 - mean) / std with the ImageSet's
    constants (the checkpoint's preset when loaded through training.data.checkpoint_split).
    ``transform="v1"`` first applies NASWOT's pad-4 random crop + flip, drawn from the same generator."""
    need = batch_size * batches
    if need > len(images):
        raise UserError(f"{batches} batches of {batch_size} need {need} images but the split has {len(images)}; "
                        "lower --batches or --batch-size")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(images), generator=g)[:need]
    u8 = images.images[idx]
    if transform == "v1":
        u8 = random_crop_flip(u8, g)
    x = normalize(u8, images.mean, images.std)
    return list(x.split(batch_size))
