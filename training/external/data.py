"""Evaluation data for models from outside orthokd: (images, labels) tensors from whatever the user has.

``as_tensors`` takes an (images, labels) tensor pair, a DataLoader (or any iterable of (images, labels)
batches) or a map-style dataset of (image tensor, label) items (a torchvision dataset with a ToTensor-like
transform) and returns them stacked, in order. ``load_images`` serves the CLIs: CIFAR-10/100 and npz folders
through training.data (normalized with the dataset's statistics, or with ``transform`` applied to the uint8
images), and ``imagefolder`` (torchvision.datasets.ImageFolder of DATA_DIR/SPLIT, or DATA_DIR itself when it
has no such folder) with ``transform`` applied to each image. ``make_transform`` builds that transform from a
torchvision weights name (its own inference transforms) or from explicit resize / crop / mean / std.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.data.datasets import load_split
from training.errors import UserError

Transform = Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class TensorData:
    images: torch.Tensor  # float, as the model takes them (normalized)
    labels: torch.Tensor  # int64 (N,)
    num_classes: int
    description: str  # where the images came from, recorded in artifacts

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalized(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images on ``device`` (already normalized: the same interface as training.data.ImageSet)."""
        return self.images.to(device)


def as_tensors(data: Any, max_images: int | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(images, labels, description) of ``max_images`` items of ``data`` (all when None): the first ones of a
    tensor pair or a DataLoader, of a dataset ones spread evenly over it (as the CLIs do: an ImageFolder lists
    its images class by class, so its first ones would hold one class)."""
    if max_images is not None and max_images < 1:
        raise UserError(f"max_images {max_images}: use a positive number of images (or None for all)")
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        x, y, what = data[0], data[1], "tensors"
    else:
        if (
            hasattr(data, "__getitem__")
            and hasattr(data, "__len__")
            and not isinstance(data, torch.utils.data.DataLoader)
        ):
            what = f"{type(data).__name__} dataset"
            if max_images is not None and max_images < len(data):
                data = torch.utils.data.Subset(data, _spread(len(data), max_images).tolist())
            data = torch.utils.data.DataLoader(data, batch_size=256, shuffle=False)
        else:
            what = f"{type(data).__name__} batches"
        xs, ys, n = [], [], 0
        for batch in data:
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2 and torch.is_tensor(batch[0])):
                raise UserError(f"data from a {what} must give (image tensor, label) items; give the dataset a "
                                "transform that returns tensors (e.g. the weights' transforms())")
            xs.append(batch[0])
            ys.append(torch.as_tensor(batch[1]))
            n += len(batch[0])
            if max_images is not None and n >= max_images:
                break
        if not xs:
            raise UserError(f"the {what} holds no images")
        x, y = torch.cat(xs), torch.cat(ys)
    x, y = x[:max_images], y[:max_images]
    if x.shape[0] == 0 or x.shape[0] != y.shape[0] or y.dim() != 1 or y.is_floating_point():
        raise UserError(f"data must be N inputs with N integer class labels (got inputs {tuple(x.shape)}, "
                        f"labels {tuple(y.shape)} {y.dtype})")
    return x.float(), y.long(), what


def make_transform(weights: str | None = None, resize: int | None = None, crop: int | None = None,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> Transform | None:
    """``torchvision:WEIGHTS`` (e.g. ResNet18_Weights.IMAGENET1K_V1): those weights' own inference transforms;
    else resize (shorter side) -> centre crop -> float in [0, 1] -> (x - mean) / std, each step only when
    given; None when nothing is given. Works on PIL images and on uint8 tensors (one image or a batch)."""
    from torchvision.transforms import v2

    if weights is not None:
        if resize is not None or crop is not None or mean is not None or std is not None:
            raise UserError("--transform torchvision:WEIGHTS sets resize, crop, mean and std itself; leave out "
                            "--resize, --crop, --mean and --std")
        source, _, name = weights.partition(":")
        if source != "torchvision" or not name:
            raise UserError(f"--transform {weights}: use torchvision:WEIGHTS, e.g. "
                            "torchvision:ResNet18_Weights.IMAGENET1K_V1")
        import torchvision

        try:
            return torchvision.models.get_weight(name).transforms()
        except (ValueError, KeyError, AttributeError):
            raise UserError(f"--transform {weights}: torchvision has no weights {name!r}; name them as "
                            "ResNet18_Weights.IMAGENET1K_V1") from None
    if (mean is None) != (std is None):
        raise UserError("--mean and --std go together; give both (three numbers each for RGB)")
    if resize is None and crop is None and mean is None:
        return None
    steps: list[Any] = [v2.Resize(resize, antialias=True)] if resize is not None else []  # on PIL images: PIL's resize
    steps += [v2.CenterCrop(crop)] if crop is not None else []
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    steps += [v2.Normalize(list(mean), list(std))] if mean is not None else []
    return v2.Compose(steps)


def _spread(n: int, k: int | None) -> np.ndarray:
    """k indices spread evenly over range(n) (all when k is None or >= n): ImageFolder lists images class by
    class, so a prefix would hold one class."""
    return np.arange(n) if k is None or k >= n else np.linspace(0, n - 1, k).round().astype(int)


def _open_image(path: str) -> Any:
    """torchvision's ImageFolder loader (PIL, RGB), refusing a file PIL cannot read in one line that names it."""
    from torchvision.datasets.folder import default_loader

    try:
        return default_loader(path)
    except OSError as e:  # PIL.UnidentifiedImageError (not an image) and truncated image data are OSErrors
        raise UserError(f"{path} in the image folder is not a readable image ({type(e).__name__}); remove or "
                        "replace it") from None


def load_images(dataset: str, split: str, data_dir: str | None, max_images: int | None,
                transform: Transform | None) -> TensorData:
    """The evaluation images of a CLI run with --model (module docstring)."""
    if dataset == "imagefolder":
        import torchvision

        if data_dir is None:
            raise UserError("--dataset imagefolder needs --data-dir (a folder of class sub-folders, or of "
                            "train/ and test/ each holding them)")
        if transform is None:
            raise UserError("--dataset imagefolder needs the model's input transform: --transform "
                            "torchvision:WEIGHTS, or --resize/--crop/--mean/--std")
        root = Path(data_dir) / split if (Path(data_dir) / split).is_dir() else Path(data_dir)
        try:
            ds = torchvision.datasets.ImageFolder(str(root), transform=transform, loader=_open_image)
        except (FileNotFoundError, OSError) as e:
            raise UserError(f"--data-dir {root} is not an image folder ({e}); point it at class sub-folders") from None
        subset = torch.utils.data.Subset(ds, _spread(len(ds), max_images).tolist())
        x, y, _ = as_tensors(subset)
        return TensorData(x, y, len(ds.classes), f"imagefolder:{root} ({len(y)} of {len(ds)} images, spread evenly)")
    data = load_split(dataset, split, data_dir, max_images)
    x = data.normalized() if transform is None else transform(data.images).float()
    return TensorData(x, data.labels, data.num_classes, data.description)


def images_for_model(dataset: str | None, split: str, data_dir: str | None, max_images: int | None,
                     transform: str | None = None, resize: int | None = None, crop: int | None = None,
                     mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> TensorData:
    """The CLIs' --model images: ``load_images`` of ``dataset`` (cifar10 when None) with ``make_transform`` of
    ``transform`` (a torchvision:WEIGHTS value; others, such as diversity's none/v1, are not input transforms),
    ``resize``, ``crop``, ``mean`` and ``std``."""
    weights = transform if transform is not None and transform.startswith("torchvision:") else None
    return load_images(
        dataset or "cifar10", split, data_dir, max_images, make_transform(weights, resize, crop, mean, std)
    )
