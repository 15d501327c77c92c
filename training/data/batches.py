"""The training split resident on the device and the seeded random streams that order and augment its batches."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.data.autoaugment import HOST_AUGMENTS, HostAutoAugment, stream_seed
from training.data.datasets import ImageSet

# The last key of the augment/host streams was the rank before every rank drew the global batch; it stays 0
# so single-process runs keep the streams (and the resume) of earlier releases.
_STREAM_SUFFIX = 0


@dataclass
class EpochGenerators:
    order: torch.Generator  # data permutation
    augment: torch.Generator  # crops, flips, CutMix partner permutation
    host: np.random.Generator  # CutMix's per-batch scalars (coin, lambda, box centre)
    seed: int = 0  # the run's seed and this epoch: the keys of the per-image AutoAugment draws (stream 3)
    epoch: int = 0


def epoch_generators(seed: int, epoch: int, device: torch.device) -> EpochGenerators:
    """The generators of one epoch of the run seeded ``seed`` (the same on every rank)."""
    def torch_gen(*key: int) -> torch.Generator:
        g = torch.Generator(device=device)
        g.manual_seed(stream_seed(seed, epoch, *key))
        return g

    return EpochGenerators(torch_gen(0), torch_gen(1, _STREAM_SUFFIX),
                           np.random.default_rng([seed, epoch, 2, _STREAM_SUFFIX]), seed, epoch)


@dataclass
class DeviceSplit:
    """A split resident on the device: uint8 images (for augmentation), labels, and the normalization
    constants as (3,) device tensors (no host-to-device copy per batch); with ``augment="autoaugment"`` also
    its host copy for the per-image AutoAugment in ``workers`` DataLoader processes (training.data.autoaugment; also for
    ``"autoaugment-cutout"``)."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    host: HostAutoAugment | None = None

    @classmethod
    def from_imageset(cls, s: ImageSet, device: torch.device, augment: str = "none", workers: int = 0) -> DeviceSplit:
        host = HostAutoAugment(s.images, workers, device, augment) if augment in HOST_AUGMENTS else None
        return cls(s.images.to(device), s.labels.to(device), torch.tensor(s.mean, device=device),
                   torch.tensor(s.std, device=device), host)

    def __len__(self) -> int:
        return int(self.labels.shape[0])
