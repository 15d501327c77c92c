"""Surfaces as VTK files for ParaView (DESIGN §6.5), through pyvista.

The suffix picks the format: .vtk legacy structured grid, .vts XML structured grid, .vtp poly-data.
Points are (a, b, z) with z = loss, optionally clipped at ``zmax``, log-scaled ln(loss + 0.1), and
multiplied by ``zscale`` for viewing. Point arrays: loss, log_loss, accuracy, error (= 100 - accuracy).
Field data: the surface metadata as JSON (``meta_json``) plus cos_xy and the direction seed.
Grids are indexed "ij" (x first), so point arrays are flattened in Fortran order to match VTK's
x-fastest point order. A 1-D curve is a structured grid of ny = 1 (a polyline in .vtp).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from landscape.store import Surface
from training.checkpoint import atomic_write
from training.errors import UserError

VTK_SUFFIXES = (".vtk", ".vts", ".vtp")


def log_loss(loss: np.ndarray) -> np.ndarray:
    return np.log(loss + 0.1)


def heights(s: Surface, zmax: float | None = None, log: bool = False, zscale: float = 1.0) -> np.ndarray:
    z = log_loss(s.loss) if log else s.loss.copy()
    if zmax is not None:
        z = np.minimum(z, zmax)
    return z * zscale


def surface_mesh(s: Surface, zmax: float | None = None, log: bool = False, zscale: float = 1.0):
    """A pyvista StructuredGrid of the surface with its point and field data."""
    import pyvista as pv

    x, y = s.xcoords, (s.ycoords if not s.is_1d else np.zeros(1))
    loss = s.loss.reshape(len(x), len(y))
    acc = s.acc.reshape(len(x), len(y))
    z = heights(Surface(x, y, loss, acc, s.meta), zmax, log, zscale)
    X, Y = np.meshgrid(x, y, indexing="ij")
    grid = pv.StructuredGrid(X, Y, np.nan_to_num(z, nan=0.0))
    for name, arr in (("loss", loss), ("log_loss", log_loss(loss)), ("accuracy", acc), ("error", 100.0 - acc)):
        grid.point_data[name] = np.ascontiguousarray(arr.ravel(order="F"))
    grid.field_data["meta_json"] = np.array([json.dumps(s.meta, sort_keys=True)])
    grid.field_data["cos_xy"] = np.array([s.meta.get("cos_xy") if s.meta.get("cos_xy") is not None else np.nan])
    grid.field_data["dir_seed"] = np.array([s.meta.get("grid", {}).get("dir_seed", -1)])
    return grid


def write_vtk(s: Surface, path: Path, zmax: float | None = None, log: bool = False, zscale: float = 1.0) -> None:
    if path.suffix not in VTK_SUFFIXES:
        raise UserError(f"unknown VTK suffix {path.suffix!r}; use one of {', '.join(VTK_SUFFIXES)}")
    mesh = surface_mesh(s, zmax, log, zscale)
    if path.suffix == ".vtp":
        mesh = mesh.extract_surface(algorithm="dataset_surface") if not s.is_1d else _polyline(mesh)
    atomic_write(path, lambda tmp: mesh.save(tmp, binary=True), keep_suffix=True)


def _polyline(grid):
    import pyvista as pv

    line = pv.lines_from_points(np.asarray(grid.points))
    for name in grid.point_data.keys():
        line.point_data[name] = grid.point_data[name]
    for name in grid.field_data.keys():
        line.field_data[name] = grid.field_data[name]
    return line


def trajectory_polyline(s: Surface, zmax: float | None = None, log: bool = False, zscale: float = 1.0):
    """The PCA-projected training path as a pyvista polyline at its loss height, or None."""
    import pyvista as pv

    coords = s.meta.get("trajectory_coords")
    losses = s.meta.get("trajectory_loss")
    if not coords or not losses or s.is_1d:
        return None
    z = np.asarray(losses, dtype=float)
    z = log_loss(z) if log else z
    if zmax is not None:
        z = np.minimum(z, zmax)
    pts = np.column_stack([np.asarray(coords)[:, 0], np.asarray(coords)[:, 1], z * zscale])
    return pv.lines_from_points(pts)
