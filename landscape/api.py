"""``landscape.surface(model, data)``: the filter-normalized loss surface of any classifier (Li et al. 2018).

The same semantics as ``python -m landscape.plot`` (which calls this for --model): theta(a, b) = theta* + a d_x +
b d_y with theta* the model's own state and d_x, d_y Gaussian directions (seed ``dir_seed``, x first) filter
normalized per slice along dim 0, 1-D tensors (biases, BN gamma/beta) left still unless ``include_biasbn``;
coordinates set absolutely; every point evaluated in eval mode with frozen BN statistics (BN folded into the
preceding layer where torch.fx allows, landscape.folding), on a copy, so ``model`` is unchanged afterwards. Each
point: mean ``loss(logits, labels, reduction="none")`` (cross-entropy) and accuracy (%) over all of ``data``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landscape import record
from landscape.compute import (
    EngineOptions,
    build_directions,
    check_directions_fit,
    evaluate_surface,
    surface_meta,
    tensors_sha,
)
from landscape.config import GridSpec
from landscape.directions import Direction, float_state
from landscape.engine import Loss
from landscape.formats.dispatch import save_as
from landscape.pictures.render import contour_png, render_png
from training.errors import UserError
from training.external.data import as_tensors
from training.external.model_output import check_model_inputs
from training.runtime.device import resolve_device
from training.runtime.distributed import DistInfo


class Surface(record.Surface):
    """The surface ``landscape.surface`` returns: the record (landscape.record.Surface: coordinates, loss and
    accuracy grids, computed-mask, metadata, directions) with its writers."""

    @classmethod
    def of(cls, r: record.Surface) -> Surface:
        """The same record, with the writers (the arrays are shared, not copied)."""
        return cls(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)})

    def save(self, path: str | Path, *, zmax: float | None = None, log: bool = False,
             zscale: float | None = None) -> list[Path]:
        """Write the surface in the format the suffix names (.npz, .vtk, .vts, .vtp, .h5: landscape.formats.dispatch);
        returns every file written."""
        return save_as(self, Path(path), zmax, log, zscale)

    def render(self, path: str | Path, *, zmax: float | None = None, log: bool = False) -> Path:
        """A 3-D render PNG (landscape.pictures.render.render_png: pyvista off-screen, matplotlib fallback)."""
        render_png(self, Path(path), zmax, log)
        return Path(path)

    def contour(self, path: str | Path, *, zmax: float | None = None, log: bool = False,
                levels: np.ndarray | None = None) -> Path:
        """A 2-D contour map PNG (landscape.pictures.render.contour_png; ``levels`` None: 21 log-spaced levels)."""
        if self.is_1d:
            raise UserError("a 1-D curve has no contour map; use render() for its picture")
        contour_png(self, Path(path), zmax, log, levels=levels)
        return Path(path)


def grid(steps: int | Sequence[int], xrange: Sequence[float], yrange: Sequence[float] | None, dir_seed: int,
         include_biasbn: bool, split: str = "train", max_images: int | None = None) -> GridSpec:
    """The GridSpec of ``steps`` (N, or (NX, NY)) points on ``xrange`` x ``yrange`` (None: a 1-D curve)."""
    nx, ny = (steps, steps) if isinstance(steps, int) else tuple(steps) if len(steps) == 2 else (None, None)
    if nx is None:
        raise UserError(f"steps {steps!r}: give N or (NX, NY)")
    if len(xrange) != 2 or (yrange is not None and len(yrange) != 2):
        raise UserError("xrange and yrange take (MIN, MAX)")
    ymin, ymax = yrange if yrange is not None else (-1.0, 1.0)
    return GridSpec(xmin=float(xrange[0]), xmax=float(xrange[1]), xsteps=nx, ymin=float(ymin), ymax=float(ymax),
                    ysteps=0 if yrange is None else ny, dir_seed=dir_seed, include_biasbn=include_biasbn, split=split,
                    max_images=max_images)


def surface(model: nn.Module, data: Any, *, loss: Loss = F.cross_entropy, steps: int | Sequence[int] = 51,
            xrange: Sequence[float] = (-1.0, 1.0), yrange: Sequence[float] | None = (-1.0, 1.0),
            directions: Sequence[Direction] | str | Path | None = None, dir_seed: int = 123,
            include_biasbn: bool = False, batch_size: int | None = None, device: torch.device | str | None = None,
            store: str | Path | None = None, max_images: int | None = None, options: EngineOptions | None = None,
            name: str | None = None, description: str | None = None, split: str = "train", overwrite: bool = False,
            quiet: bool = True, output_key: str = "logits",
            dist: DistInfo = DistInfo()) -> Surface:
    """The loss surface of ``model`` on ``data`` (module docstring).

    data: an (images, labels) tensor pair, a DataLoader or a dataset of (image tensor, label) items (its
    ``max_images``: the first ones of a pair or DataLoader, of a dataset ones spread evenly over it).
    directions: None (random, as above), a list of {name: tensor} dicts, or a file (a stored surface .npz or Li's
    direction .h5). yrange None: a 1-D curve along x. store: an .npz that makes the run
    resumable (only the points it lacks are computed; a different surface there is refused unless
    ``overwrite``). options: engine settings (bf16, fold_bn, points_per_forward; ``batch_size`` overrides its
    batch size). device None: cuda when available, else cpu. name: the model's name in the metadata and
    pictures [its class name]. description: what the data is, for the metadata [its type]. ``split`` only
    labels the data (Li's HDF5 names its datasets by it). output_key: the logits' key when the model returns a
    mapping. Bad input raises UserError (a ValueError) with one line naming the fix."""
    images, labels, kind_of_data = as_tensors(data, max_images)
    model = check_model_inputs(model, images, labels, output_key)
    spec = grid(steps, xrange, yrange, dir_seed, include_biasbn, split, max_images)
    count = 1 if spec.is_1d else 2
    if directions is None or isinstance(directions, (str, Path)):
        kind, dirs, extra = build_directions(
            model, spec, Path(directions) if directions is not None else None, None, None
        )
    else:
        dirs, kind, extra = list(directions), "given", {}
        if len(dirs) != count:
            raise UserError(f"a {count}-D surface needs {count} direction(s), {len(dirs)} given")
        check_directions_fit(model, dirs, "directions")
    opts = options or EngineOptions()
    if batch_size is not None:
        opts = dataclasses.replace(opts, batch_size=batch_size)
    device = torch.device(device) if device is not None else resolve_device("auto")
    label = name or type(model).__name__
    source = {"model": label, "checkpoint_sha256": tensors_sha([float_state(model)]), "arch": {"name": label},
              "bn": "eval mode, the model's statistics", **extra}
    if loss is not F.cross_entropy:
        source["loss"] = getattr(loss, "__qualname__", repr(loss))
    meta = surface_meta(
        kind, spec, dirs, f"{description or kind_of_data} [{split}] ({len(labels)} images)", device, source
    )
    return Surface.of(evaluate_surface(model, images, labels, spec, dirs, meta, device, opts,
                                       store=Path(store) if store is not None else None, overwrite=overwrite,
                                       quiet=quiet, dist=dist, what=f"surface of {label}", loss=loss))
