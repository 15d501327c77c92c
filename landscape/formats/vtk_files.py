"""Surfaces as VTK files for ParaView, through pyvista.

The suffix picks the format: .vtk legacy structured grid, .vts XML structured grid, .vtp poly-data.
Points are (a, b, h * z_scale) with the height h = min(loss, zmax) (zmax optional) or, with log,
h = ln(min(loss, zmax) + 0.1): the loss is clipped first and then log-scaled, as Li et al.'s h52vtp does.
By default z_scale = 0.5 * max(x extent, y extent) / (height extent), so the file looks like a bowl, not a
needle, when ParaView opens it; an explicit positive z_scale overrides it. A non-finite loss (NaN or inf)
gets the largest finite height and valid = 0 in the point array ``valid`` (1 elsewhere), so the mesh stays
whole and such points can be thresholded away.
Point arrays (unscaled): loss, log_loss = ln(loss + 0.1), accuracy, error = 100 - accuracy, valid.
Beside every file: OUT.pvpython.py, a ParaView script that renders it (landscape.formats.paraview).
Field data: the surface metadata as JSON (meta_json, with the height transform under "vtk_heights"),
z_scale, cos_xy and the direction seed.
Grids are indexed "ij" (x first), so point arrays are flattened in Fortran order to match VTK's
x-fastest point order. A 1-D curve is a structured grid of ny = 1 (a polyline in .vtp).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from landscape.formats.paraview import write_pvpython_script
from landscape.heights import height_label, log_loss, loss_heights, resolve_zscale, scaled_heights
from landscape.labels import axis_labels, surface_title
from landscape.record import Surface
from training.errors import UserError
from training.store.files import atomic_write

VTK_SUFFIXES = (".vtk", ".vts", ".vtp")


def surface_mesh(s: Surface, zmax: float | None = None, log: bool = False, zscale: float | None = None):
    """A pyvista StructuredGrid of the surface with its point and field data (zscale None: automatic)."""
    import pyvista as pv

    k = resolve_zscale(s, zmax, log, zscale)
    x, y = s.xcoords, (s.ycoords if not s.is_1d else np.zeros(1))
    loss = np.asarray(s.loss, dtype=float).reshape(len(x), len(y))
    acc = np.asarray(s.acc, dtype=float).reshape(len(x), len(y))
    z = scaled_heights(loss_heights(loss, zmax, log), k)
    X, Y = np.meshgrid(x, y, indexing="ij")
    grid = pv.StructuredGrid(X, Y, z)
    arrays = (("loss", loss), ("log_loss", log_loss(loss)), ("accuracy", acc), ("error", 100.0 - acc),
              ("valid", np.isfinite(loss).astype(np.uint8)))
    for name, arr in arrays:
        grid.point_data[name] = np.ascontiguousarray(arr.ravel(order="F"))
    meta = dict(s.meta, vtk_heights={"z": f"{height_label(zmax, log)} * z_scale", "z_scale": k, "zmax": zmax,
                                     "log": log, "non_finite": "largest finite height, valid = 0"})
    grid.field_data["meta_json"] = np.array([json.dumps(meta, sort_keys=True)])
    grid.field_data["z_scale"] = np.array([k])
    grid.field_data["cos_xy"] = np.array([s.meta.get("cos_xy") if s.meta.get("cos_xy") is not None else np.nan])
    grid.field_data["dir_seed"] = np.array([s.meta.get("grid", {}).get("dir_seed", -1)])
    return grid


def write_vtk(s: Surface, path: Path, zmax: float | None = None, log: bool = False,
              zscale: float | None = None) -> float:
    """Write the surface to ``path`` (format from the suffix) and the ParaView script beside it
    (OUT.pvpython.py); returns the z_scale used."""
    if path.suffix not in VTK_SUFFIXES:
        raise UserError(f"unknown VTK suffix {path.suffix!r}; use one of {', '.join(VTK_SUFFIXES)}")
    mesh = surface_mesh(s, zmax, log, zscale)
    if path.suffix == ".vtp":
        mesh = mesh.extract_surface(algorithm="dataset_surface") if not s.is_1d else _polyline(mesh)
    atomic_write(path, lambda tmp: mesh.save(tmp, binary=True), keep_suffix=True)
    k = float(mesh.field_data["z_scale"][0])
    zlabel = height_label(zmax, log)  # the script's z axis reads the height itself (it undoes z_scale)
    write_pvpython_script(path, surface_title(s.meta), (*axis_labels(s.meta), zlabel), f"{zlabel} x {k:.3g}")
    return k


def _polyline(grid):
    import pyvista as pv

    line = pv.lines_from_points(np.asarray(grid.points))
    for name in grid.point_data.keys():
        line.point_data[name] = grid.point_data[name]
    for name in grid.field_data.keys():
        line.field_data[name] = grid.field_data[name]
    return line


def trajectory_polyline(s: Surface, zmax: float | None = None, log: bool = False, zscale: float | None = None):
    """The PCA-projected training path as a pyvista polyline at its height (same transform and z_scale as
    the surface; zscale None: the surface's automatic one), or None."""
    import pyvista as pv

    coords = s.meta.get("trajectory_coords")
    losses = s.meta.get("trajectory_loss")
    if not coords or not losses or s.is_1d:
        return None
    k = resolve_zscale(s, zmax, log, zscale)
    c = np.asarray(coords, dtype=float)
    line = pv.lines_from_points(np.column_stack([c[:, 0], c[:, 1], scaled_heights(loss_heights(losses, zmax, log), k)]))
    line.point_data["loss"] = np.asarray(losses, dtype=float)
    return line
