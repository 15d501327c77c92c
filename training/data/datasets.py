"""Datasets as uint8 tensors (docs/reference.md "Data"): torchvision's CIFAR on-disk format, npz files, embedded data.

Every split is returned whole as an ``ImageSet``: uint8 images (N, 3, 32, 32), int64 labels and the
normalization constants of its dataset. The whole CIFAR train set is 150 MB as uint8, so training and
analysis keep it resident on the device and do augmentation there (training.data.augment).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.errors import UserError

# Package data (pyproject.toml), so an installed wheel carries it too.
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded" / "cifar10-mini"

# Per-channel mean / std of the training split (docs/reference.md "Data").
NORMALIZATION: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

# Normalization presets: "cifar" = the true per-dataset statistics above (default);
# "rethinking" = rethinking-network-pruning's constants, CIFAR-10's mean with std 0.2023/0.1994/0.2010 for
# both CIFAR-10 and CIFAR-100, for reference-exact reproduction.
RETHINKING = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
# "cutmix" = CutMix-PyTorch's constants (its train.py), also CIFAR-10's for CIFAR-100: the Tables 4-5 study's default.
CUTMIX = (tuple(v / 255 for v in (125.3, 123.0, 113.9)), tuple(v / 255 for v in (63.0, 62.1, 66.7)))
PRESET_CONSTANTS = {"rethinking": RETHINKING, "cutmix": CUTMIX}
NORMALIZATIONS = ("cifar", "rethinking", "cutmix")

SPLITS = ("train", "test")


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, 32, 32), RGB
    labels: torch.Tensor  # int64 (N,)
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str  # where it came from, recorded in artifacts

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> ImageSet:
        """The first n images (all when n is None). The sources are shuffled, so a prefix mixes classes."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise UserError(f"the number of images must be positive, got {n}")
        return ImageSet(self.images[:n], self.labels[:n], self.num_classes, self.mean, self.std,
                        f"{self.description} (first {n})")

    def normalized(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(x/255 - mean)/std as float on ``device``: the un-augmented input used for evaluation."""
        return normalize(self.images.to(device), self.mean, self.std, dtype)


def normalize(images_u8: torch.Tensor, mean, std, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(x/255 - mean)/std per channel. ``mean``/``std`` are tuples or tensors; tensors already on the images' device
    in ``dtype`` are used as they are (no host-to-device copy per batch)."""
    m = torch.as_tensor(mean, device=images_u8.device, dtype=dtype).view(1, -1, 1, 1)
    s = torch.as_tensor(std, device=images_u8.device, dtype=dtype).view(1, -1, 1, 1)
    return (images_u8.to(dtype) / 255.0 - m) / s


def _from_hwc(images: np.ndarray, labels, num_classes: int, description: str) -> ImageSet:
    images = np.ascontiguousarray(np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2))
    labels = np.asarray(labels, dtype=np.int64)
    if images.shape[0] == 0:
        raise UserError(f"{description} holds no images; point --data-dir at a non-empty dataset")
    if images.shape[1:] != (3, 32, 32) or labels.shape != (images.shape[0],):
        raise UserError(f"{description}: expected N x 32 x 32 x 3 images and N labels, got {images.shape} and "
                        f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise UserError(f"{description}: labels must lie in 0..{num_classes - 1}")
    mean, std = NORMALIZATION.get(num_classes, NORMALIZATION[10])
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), num_classes, mean, std, description)


def _load_npz_file(path: Path) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
            num_classes = len(z["classes"]) if "classes" in z.files else int(labels.max()) + 1
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read {path} as an npz with 'images' and 'labels' ({e}); it needs uint8 'images' (N, "
                        "32, 32, 3) and int64 'labels' (N,), see docs/reference.md") from None
    return _from_hwc(images, labels, num_classes, f"npz:{path}")


def _npz(split: str, data_dir: str | None) -> ImageSet:
    """A directory holding exactly one ``*-train.npz`` and one ``*-test.npz`` (e.g. ../shared/data)."""
    root = Path(data_dir) if data_dir else EMBEDDED_DIR
    found = sorted(root.glob(f"*-{split}.npz")) if root.is_dir() else []
    if not data_dir and len(found) != 1:
        raise UserError(f"the embedded CIFAR-10 subset is missing from this installation ({root}); reinstall orthokd "
                        "from its wheel, or pass --dataset and --data-dir")
    if len(found) != 1:
        raise UserError(
            f"--dataset npz needs exactly one *-{split}.npz in --data-dir {root} (found {len(found)}); "
            "point --data-dir at a folder holding one of each"
        )
    return _load_npz_file(found[0])


def _torchvision(cls_name: str, num_classes: int) -> Callable[[str, str | None], ImageSet]:
    def load(split: str, data_dir: str | None) -> ImageSet:
        if data_dir is None:
            if num_classes == 10:
                return _npz(split, None)  # the embedded CIFAR-10 subset
            raise UserError(f"--dataset {cls_name.lower()} needs --data-dir (no embedded copy ships with orthokd)")
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        try:
            ds = cls(root=data_dir, train=(split == "train"), download=False)
        except RuntimeError:
            raise UserError(
                f"{cls_name} not found under --data-dir {data_dir}; download it once with "
                f"torchvision.datasets.{cls_name}(root='{data_dir}', download=True) on a machine with internet"
            ) from None
        return _from_hwc(ds.data, ds.targets, num_classes, f"{cls_name.lower()}:{data_dir}:{split}")

    return load


DATASETS: dict[str, Callable[[str, str | None], ImageSet]] = {
    "cifar10": _torchvision("CIFAR10", 10),
    "cifar100": _torchvision("CIFAR100", 100),
    "npz": _npz,
}


def load_split(dataset: str, split: str, data_dir: str | None = None, max_images: int | None = None,
               normalization: str = "cifar") -> ImageSet:
    """Load ``split`` ('train' or 'test') of a registered dataset; ``data_dir=None`` = embedded CIFAR-10.
    ``normalization`` picks the mean/std preset the images are normalized with (NORMALIZATIONS)."""
    if normalization not in NORMALIZATIONS:
        raise UserError(f"unknown normalization {normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    data = DATASETS[dataset](split, data_dir).head(max_images)
    if normalization in PRESET_CONSTANTS:
        mean, std = PRESET_CONSTANTS[normalization]
        data = dataclasses.replace(data, mean=mean, std=std)
    return data


def checkpoint_split(config: dict, split: str, max_images: int | None = None, dataset: str | None = None,
                     data_dir: str | None = None) -> ImageSet:
    """The split a checkpoint was trained on, normalized as it was trained (its config's dataset, data_dir and
    normalization), unless ``dataset`` / ``data_dir`` override them. Analyses (surfaces, scores, sharpness)
    load their images through this, so they see exactly the inputs the network was trained on."""
    return load_split(dataset or config.get("dataset", "cifar10"), split,
                      data_dir if data_dir is not None else config.get("data_dir"), max_images,
                      config.get("normalization", "cifar"))
