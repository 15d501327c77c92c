"""AutoAugment as the paper's "random policy", per image on the host (docs/reference.md "Tables 4-5: augmentation × KD",
docs/reference.md "Data").

Two pipelines (``TrainConfig.augment``):

- ``autoaugment-cutout`` (the Tables 4-5 study's default): the CIFAR pipeline of DeepVoltaire's AutoAugment code, the
  code the paper names: RandomCrop(32, padding=4, fill=128) -> RandomHorizontalFlip -> the CIFAR-10 policy -> Cutout
  (one 16x16 hole, pixels set to 0 before normalization), all on the host; the device adds nothing but CutMix.
- ``autoaugment``: the policy alone on the host, then the device's zero-pad crop and flip (no Cutout), as earlier
  releases trained.

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

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from training.errors import UserError

AUGMENTS = ("none", "autoaugment", "autoaugment-cutout")  # TrainConfig.augment / --augment
HOST_AUGMENTS = AUGMENTS[1:]  # the ones that run on the host (DataLoader workers)
HOST_CROPS = ("autoaugment-cutout",)  # the ones whose pipeline crops and flips on the host (the device must not again)
_STREAM = 3  # SeedSequence key of the per-image AutoAugment draws (0, 1, 2 are training.engine.loop's streams)
FILL = 128  # grey fill of the pixels that shear / translate / rotate (and the reference's crop padding) uncover
CUTOUT = 16  # side of the Cutout hole in DeepVoltaire's CIFAR pipeline (DeVries & Taylor's CIFAR-10 setting)


def stream_seed(*key: int) -> int:
    """A 63-bit torch seed from numpy's ``SeedSequence(key)`` (well-mixed, distinct keys give unrelated streams)."""
    return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)


def check_image_size(images: torch.Tensor) -> None:
    """Refuse images that are not 32x32: the CIFAR-10 policy's magnitudes are for CIFAR-sized images."""
    h, w = images.shape[-2:]
    if (h, w) != (32, 32):
        raise UserError(f"--augment autoaugment* applies the CIFAR-10 policy to 32x32 images, but this dataset's are "
                        f"{h}x{w}; use --augment none or a 32x32 dataset")


def cutout(image: torch.Tensor, length: int = CUTOUT) -> torch.Tensor:
    """DeVries & Taylor's Cutout (uoguelph-mlrg/Cutout ``util/cutout.py``) of one (C, H, W) image: a centre
    (y, x) uniform over the image (torch's global generator), the square [y - length//2, y + length//2) x
    [x - length//2, x + length//2) clipped at the borders set to 0, always applied. Written here because
    torchvision's RandomErasing is another operation (probability 0.5, random area and aspect ratio, the box kept
    inside the image)."""
    h, w = image.shape[-2:]
    y, x = int(torch.randint(h, ())), int(torch.randint(w, ()))
    out = image.clone()
    out[..., max(y - length // 2, 0) : min(y + length // 2, h), max(x - length // 2, 0) : min(x + length // 2, w)] = 0
    return out


class AutoAugmented(Dataset):
    """Item ``(seed, epoch, i)`` = the ``pipeline`` (HOST_AUGMENTS) of image ``i`` as uint8 (3, 32, 32), drawn from
    ``stream_seed(seed, epoch, 3, i)``: the key travels with the index, so persistent workers serve every epoch."""

    def __init__(self, images_hwc: np.ndarray, pipeline: str = "autoaugment"):
        from torchvision import transforms as T

        self.images, self.cutout = images_hwc, pipeline in HOST_CROPS
        policy = T.AutoAugment(T.AutoAugmentPolicy.CIFAR10, fill=[FILL] * 3)
        self.policy = T.Compose([T.RandomCrop(32, padding=4, fill=FILL), T.RandomHorizontalFlip(), policy]
                                ) if self.cutout else policy

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int]) -> torch.Tensor:
        from PIL import Image

        seed, epoch, i = key
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also seed every CUDA device, ~100x slower per image.
            torch.default_generator.manual_seed(stream_seed(seed, epoch, _STREAM, i))
            out = torch.from_numpy(np.array(self.policy(Image.fromarray(self.images[i])))).permute(2, 0, 1)
            return cutout(out) if self.cutout else out


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

    def __init__(self, images: torch.Tensor, workers: int, device: torch.device, pipeline: str = "autoaugment"):
        check_image_size(images)
        if workers < 0:
            raise UserError(f"--workers {workers} must be a positive integer")
        self.device, self._plan, self._active = torch.device(device), _Plan(), False
        hwc = np.ascontiguousarray(images.cpu().permute(0, 2, 3, 1).numpy())
        self._loader = DataLoader(AutoAugmented(hwc, pipeline), batch_sampler=self._plan, num_workers=workers,
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
