"""Defaults of a surface: Li et al.'s 51 x 51 grid on [-1, 1]^2 with seed-123 Gaussian directions, filter
normalization, biases and BN parameters ignored, the whole un-augmented train split.

A ``GridSpec`` refuses impossible grids when it is built (a UserError naming the fix), so the library
refuses what the command line refuses."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.config import INT_MAX
from training.errors import UserError


def _check_axis(flag: str, lo: float, hi: float, steps: int) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UserError(f"{flag} {lo} {hi}: both ends must be finite numbers")
    if lo > hi:
        raise UserError(f"{flag} {lo:g} {hi:g} is reversed; give MIN before MAX ({flag} {hi:g} {lo:g})")
    if lo == hi and steps > 1:
        raise UserError(f"{flag} {lo:g} {hi:g} is empty but asks for {steps} points; give MIN < MAX "
                        "(or --steps 1 for a single point)")


@dataclass(frozen=True)
class GridSpec:
    xmin: float = -1.0  # first x coordinate (Li: -1)
    xmax: float = 1.0  # last x coordinate (Li: 1)
    xsteps: int = 51  # points along x (Li: 51)
    ymin: float = -1.0
    ymax: float = 1.0
    ysteps: int = 51  # points along y; 0 = a 1-D curve along x only
    dir_seed: int = 123  # seed of the Gaussian directions (x first, then the next draws for y); >= 0
    include_biasbn: bool = False  # Li's default ignores 1-D tensors (biases, BN gamma/beta): zero direction
    split: str = "train"  # evaluation split (Li: the whole training set)
    max_images: int | None = None  # None = the whole split
    dataset: str | None = None  # None = the checkpoint's own dataset
    data_dir: str | None = None  # None = the checkpoint's own data_dir

    def __post_init__(self) -> None:
        if self.xsteps < 1:
            raise UserError(f"--steps {self.xsteps}: the grid needs at least 1 point along x")
        if self.ysteps < 0:
            raise UserError(f"--steps {self.ysteps}: the grid needs at least 1 point along y (0 = a 1-D curve)")
        _check_axis("--xrange", self.xmin, self.xmax, self.xsteps)
        if not self.is_1d:
            _check_axis("--yrange", self.ymin, self.ymax, self.ysteps)
        if not 0 <= self.dir_seed <= INT_MAX:
            raise UserError(f"--dir-seed {self.dir_seed}: use a seed in 0..2**63-1")
        if self.max_images is not None and self.max_images < 1:
            raise UserError(
                f"--max-images {self.max_images}: use a positive number of images (or leave it out for all)"
            )
        if self.split not in ("train", "test"):
            raise UserError(f"--split {self.split}: use train or test")

    @property
    def is_1d(self) -> bool:
        return self.ysteps == 0

    def xcoords(self) -> np.ndarray:
        return np.linspace(self.xmin, self.xmax, self.xsteps)

    def ycoords(self) -> np.ndarray:
        return np.zeros(0) if self.is_1d else np.linspace(self.ymin, self.ymax, self.ysteps)

    @property
    def shape(self) -> tuple[int, ...]:
        """(nx,) or (nx, ny): our arrays are indexed [ix, iy] (Li's HDF5 files are [iy, ix]; see
        landscape.formats.li_h5)."""
        return (self.xsteps,) if self.is_1d else (self.xsteps, self.ysteps)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
