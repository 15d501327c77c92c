"""AutoAugment as the paper's "random policy", per image on the host (DESIGN §12, docs/reference.md §2).

Each training image, each epoch, goes through torchvision's ``AutoAugment(AutoAugmentPolicy.CIFAR10, fill=[128]*3)``
on a PIL image (torchvision's PIL path, as DeepVoltaire's ``CIFAR10Policy``): one of the 25 CIFAR-10 sub-policies is
drawn for that image, and each of its two operations applies with its own probability (with a random sign where the
operation has one). This is not AutoAugment's "random policy" ablation (policies whose operations are sampled at
random): the learned CIFAR-10 policy is used, its sub-policy drawn at random per image. The result (uint8) then goes
through the device pipeline (pad-crop, flip, CutMix) as a plain image would.

Determinism: image ``i`` of epoch ``e`` of the run seeded ``s`` draws its sub-policy and coins from the CPU generator
seeded ``stream_seed(s, e, 3, i)``, inside ``torch.random.fork_rng`` so nothing else's stream moves. So the augmented
image depends on neither the DataLoader worker count, the batch it lands in, the torchrun rank, nor what ran
before: a resumed run equals an uninterrupted one. (A batched torchvision v2 call would give a whole batch one
sub-policy; this draws per image.)
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from training.errors import UserError

AUGMENTS = ("none", "autoaugment")  # TrainConfig.augment / --augment
_STREAM = 3  # SeedSequence key of the per-image AutoAugment draws (0, 1, 2 are training.loop's streams)
FILL = 128  # grey fill of the pixels that shear / translate / rotate uncover


def stream_seed(*key: int) -> int:
    """A 63-bit torch seed from numpy's ``SeedSequence(key)`` (well-mixed, distinct keys give unrelated streams)."""
    return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)


def check_image_size(images: torch.Tensor) -> None:
    """Refuse images that are not 32x32: the CIFAR-10 policy's magnitudes are for CIFAR-sized images."""
    h, w = images.shape[-2:]
    if (h, w) != (32, 32):
        raise UserError(f"--augment autoaugment applies the CIFAR-10 policy to 32x32 images, but this dataset's are "
                        f"{h}x{w}; drop --augment autoaugment or use a 32x32 dataset")


class AutoAugmented(Dataset):
    """Item ``(seed, epoch, i)`` = AutoAugment(image ``i``) as uint8 (3, 32, 32), drawn from
    ``stream_seed(seed, epoch, 3, i)``: the key travels with the index, so persistent workers serve every epoch."""

    def __init__(self, images_hwc: np.ndarray):
        from torchvision.transforms import AutoAugment, AutoAugmentPolicy

        self.images = images_hwc
        self.policy = AutoAugment(AutoAugmentPolicy.CIFAR10, fill=[FILL] * 3)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int]) -> torch.Tensor:
        from PIL import Image

        seed, epoch, i = key
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also seed every CUDA device, ~100x slower per image.
            torch.default_generator.manual_seed(stream_seed(seed, epoch, _STREAM, i))
            out = self.policy(Image.fromarray(self.images[i]))
        return torch.from_numpy(np.array(out)).permute(2, 0, 1)


class _Plan:
    """The DataLoader's batch sampler: the keys of the batches of the pass about to start (set before each pass)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class HostAutoAugment:
    """A split's images kept on the host (HWC, for PIL) and its AutoAugmented batches, made ahead of the training
    step by ``workers`` DataLoader processes (started once and kept across epochs; 0 = in this process) and copied
    to ``device``."""

    def __init__(self, images: torch.Tensor, workers: int, device: torch.device):
        check_image_size(images)
        if workers < 0:
            raise UserError(f"--workers {workers} must be a positive integer")
        self.device, self._plan, self._active = torch.device(device), _Plan(), False
        hwc = np.ascontiguousarray(images.cpu().permute(0, 2, 3, 1).numpy())
        self._loader = DataLoader(AutoAugmented(hwc), batch_sampler=self._plan, num_workers=workers,
                                  collate_fn=torch.stack, pin_memory=self.device.type == "cuda",
                                  persistent_workers=workers > 0, prefetch_factor=4 if workers else None)

    def batches(self, index_batches: Sequence[torch.Tensor], seed: int, epoch: int) -> Iterator[torch.Tensor]:
        """uint8 (B, 3, 32, 32) batches on the device: batch j holds the AutoAugmented images ``index_batches[j]``
        (CPU int64) of epoch ``epoch`` of the run seeded ``seed``, in that order. One pass at a time: the workers
        are shared, so a second pass may start only once the previous one is finished or closed."""
        if self._active:
            raise UserError("a split's AutoAugment workers serve one epoch at a time; finish or close the previous "
                            "pass first (or give each run its own DeviceSplit)")
        self._active = True
        try:
            self._plan.batches = [[(seed, epoch, i) for i in b.tolist()] for b in index_batches]
            for x in self._loader:
                yield x.to(self.device, non_blocking=True)
        finally:
            self._active = False
