"""Defaults of a surface (DESIGN §6): Li et al.'s 51 x 51 grid on [-1, 1]^2 with seed-123 Gaussian
directions, filter normalization, biases and BN parameters ignored, the whole un-augmented train split."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GridSpec:
    xmin: float = -1.0  # first x coordinate (Li: -1)
    xmax: float = 1.0  # last x coordinate (Li: 1)
    xsteps: int = 51  # points along x (Li: 51)
    ymin: float = -1.0
    ymax: float = 1.0
    ysteps: int = 51  # points along y; 0 = a 1-D curve along x only
    dir_seed: int = 123  # seed of the Gaussian directions (x first, then the next draws for y)
    include_biasbn: bool = False  # Li's default ignores 1-D tensors (biases, BN gamma/beta): zero direction
    split: str = "train"  # evaluation split (Li: the whole training set)
    max_images: int | None = None  # None = the whole split
    dataset: str | None = None  # None = the checkpoint's own dataset
    data_dir: str | None = None  # None = the checkpoint's own data_dir

    @property
    def is_1d(self) -> bool:
        return self.ysteps == 0

    def xcoords(self) -> np.ndarray:
        return np.linspace(self.xmin, self.xmax, self.xsteps)

    def ycoords(self) -> np.ndarray:
        return np.zeros(0) if self.is_1d else np.linspace(self.ymin, self.ymax, self.ysteps)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.xsteps,) if self.is_1d else (self.xsteps, self.ysteps)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
