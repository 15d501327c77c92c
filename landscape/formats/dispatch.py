"""Write a computed surface in the format its file suffix names (the CLI's --out and Surface.save):
.npz (our resumable store), .vtk / .vts / .vtp (VTK for ParaView, with its ParaView script beside it and the
trajectory polyline OUT_trajectory.vtp when the surface has one, at the same z_scale) or .h5 (Li et al.'s
layout, with OUT_directions.h5 beside it)."""
from __future__ import annotations

from pathlib import Path

from landscape.formats.li_h5 import write_li_h5
from landscape.formats.paraview import script_path
from landscape.formats.vtk_files import VTK_SUFFIXES, trajectory_polyline, write_vtk
from landscape.record import Surface, save_surface
from training.errors import UserError
from training.store.files import atomic_write

SUFFIXES = (*VTK_SUFFIXES, ".h5", ".npz")


def check_suffix(out: Path) -> None:
    if out.suffix not in SUFFIXES:
        raise UserError(f"--out {out}: unknown suffix {out.suffix!r}; use one of {', '.join(SUFFIXES)}")


def save_as(s: Surface, out: Path, zmax: float | None = None, log: bool = False,
            zscale: float | None = None) -> list[Path]:
    """Write ``s`` to ``out`` in the format of its suffix; returns every file written. ``zmax``, ``log``,
    ``zscale``: the VTK heights (landscape.formats.vtk_files.write_vtk)."""
    out = Path(out)
    check_suffix(out)
    if out.suffix == ".npz":
        save_surface(s, out)
        return [out]
    if out.suffix == ".h5":
        return write_li_h5(s, out)
    written = [out, script_path(out)]
    zscale = write_vtk(s, out, zmax, log, zscale)
    line = trajectory_polyline(s, zmax, log, zscale)
    if line is not None:
        tpath = out.with_name(out.stem + "_trajectory.vtp")
        atomic_write(tpath, lambda tmp: line.save(tmp), keep_suffix=True)
        written.append(tpath)
    return written
