"""Pictures of surfaces: a 3-D render (pyvista off-screen through EGL in a child process, matplotlib when that
fails), a 2-D contour map and a 1-D curve, one surface each (landscape.pictures.panels draws several: the Tables 7-8
panels
and the GIF).

Heights are min(loss, zmax) or ln(min(loss, zmax) + 0.1) (landscape.formats.vtk_files.heights). Titles name method,
epoch,
architecture, grid and images from the surface metadata; axes are the filter-normalized directions (alpha for an
interpolation, PC1/PC2 for a trajectory). Contour levels: np.arange(vmin, vmax, vlevel) of the height when any of
vmin, vmax, vlevel is given (Li et al.'s plot_2D defaults 0.1, 10, 0.5 fill in the others), else 21 levels evenly
spaced in ln(loss + 0.1), i.e. log-spaced in loss. Points whose loss is not finite are left blank and marked.
The *_figure functions return the matplotlib figure before it is saved.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from landscape.formats.vtk_files import surface_mesh, trajectory_polyline
from landscape.heights import auto_zscale, height_label, heights
from landscape.labels import axis_labels, surface_title
from landscape.record import Surface
from training.errors import UserError
from training.store.files import atomic_write

LI_LEVELS = (0.1, 10.0, 0.5)  # Li et al.'s plot_2D: vmin, vmax, vlevel
MAX_LEVELS = 1000  # contour levels one map may ask for (Li's defaults give 20)
CMAP = "viridis"
NONFINITE_COLOUR = "red"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    plt = pyplot()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi), keep_suffix=True)
    plt.close(fig)


def finite_heights(s: Surface, zmax: float | None, log: bool) -> np.ndarray:
    """Heights with non-finite values as NaN (matplotlib leaves them blank)."""
    z = heights(s, zmax, log)
    return np.where(np.isfinite(z), z, np.nan)


def contour_levels(s: Surface, zmax: float | None = None, log: bool = False, vmin: float | None = None,
                   vmax: float | None = None, vlevel: float | None = None) -> np.ndarray:
    """np.arange(vmin, vmax, vlevel) on the height scale when any is given (Li's defaults for the rest), else
    21 levels evenly spaced in ln(height + 0.1) between the finite extremes (log-spaced in loss)."""
    if vmin is not None or vmax is not None or vlevel is not None:
        lo, hi, step = (d if v is None else v for v, d in zip((vmin, vmax, vlevel), LI_LEVELS))
        for name, v in (("--vmin", lo), ("--vmax", hi), ("--vlevel", step)):
            if not np.isfinite(v):
                raise UserError(f"{name} {v}: use a finite number")
        if step <= 0:
            raise UserError(f"--vlevel {step}: use a positive contour spacing")
        if hi <= lo:
            raise UserError(f"--vmin {lo} --vmax {hi}: --vmax must be larger than --vmin")
        if (hi - lo) / step > MAX_LEVELS:  # before np.arange, whose array (and matplotlib's colour bins) grow with it
            raise UserError(f"--vmin {lo} --vmax {hi} --vlevel {step} ask for {(hi - lo) / step:.3g} contour levels; "
                            f"use a --vlevel of at least {(hi - lo) / MAX_LEVELS:.3g} (at most {MAX_LEVELS} levels)")
        levels = np.arange(lo, hi, step)
        if levels.size < 2:
            raise UserError(f"--vmin {lo} --vmax {hi} --vlevel {step} give fewer than 2 contour levels; "
                            "use a smaller --vlevel")
        return levels
    z = finite_heights(s, zmax, log)
    if not np.isfinite(z).any():
        raise UserError("the surface has no finite loss to draw contours of; check the checkpoint's weights")
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    if not hi > lo:
        return np.array([lo - 0.5, lo + 0.5])
    if log:
        return np.linspace(lo, hi, 21)
    levels = np.exp(np.linspace(np.log(lo + 0.1), np.log(hi + 0.1), 21)) - 0.1
    levels[[0, -1]] = lo, hi  # exactly the data's extremes, not off by rounding
    return levels


def _colour_bar(fig, mappable, levels: np.ndarray, label: str, **kw):
    """A colour bar with at most 8 labelled ticks taken from the levels."""
    from matplotlib.ticker import FormatStrFormatter

    step = max(1, int(np.ceil(len(levels) / 8)))
    bar = fig.colorbar(mappable, ticks=levels[::step], **kw)
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    bar.set_label(label)
    return bar


def _mark_nonfinite(ax, s: Surface) -> None:
    bad = ~np.isfinite(s.loss)
    if bad.any():
        X, Y = np.meshgrid(s.xcoords, s.ycoords, indexing="ij")
        ax.plot(X[bad], Y[bad], "x", color=NONFINITE_COLOUR, ms=5, clip_on=False,
                label=f"loss not finite ({int(bad.sum())})")


def draw_contour(ax, s: Surface, zmax: float | None, log: bool, levels: np.ndarray, small: bool = False):
    from matplotlib.colors import BoundaryNorm
    from matplotlib.ticker import MaxNLocator

    z = finite_heights(s, zmax, log)
    X, Y = np.meshgrid(s.xcoords, s.ycoords, indexing="ij")
    below, above = np.nanmin(z) < levels[0], np.nanmax(z) > levels[-1]  # show out-of-range values too
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above), "neither")
    norm = BoundaryNorm(levels, 256, extend=extend)
    cs = ax.contourf(X, Y, z, levels=levels, cmap=CMAP, norm=norm, extend=extend)
    ax.contour(X, Y, z, levels=levels, colors="k", linewidths=0.3)
    coords = s.meta.get("trajectory_coords")
    if coords and np.asarray(coords).shape[1] == 2:
        c = np.asarray(coords)
        ax.plot(c[:, 0], c[:, 1], ".-", color="red", lw=1.5, label="training path")
    _mark_nonfinite(ax, s)
    xl, yl = axis_labels(s.meta)
    ax.set_xlabel(xl, fontsize=7 if small else 10)
    ax.set_ylabel(yl, fontsize=7 if small else 10)
    ax.xaxis.set_major_locator(MaxNLocator(4 if small else 6))
    ax.yaxis.set_major_locator(MaxNLocator(4 if small else 6))
    # Equal units on both axes keep distances true, unless one range is far longer (a trajectory's PC2 often
    # spans 1% of PC1): then the map would be a sliver, so the axes fill the panel and the ticks give the scale.
    ratio = np.ptp(s.xcoords) / max(np.ptp(s.ycoords), 1e-300)
    if 0.25 <= ratio <= 4:
        ax.set_aspect("equal")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=6 if small else 8)
    return cs


def contour_figure(s: Surface, zmax: float | None = None, log: bool = False, title: str | None = None,
                   levels: np.ndarray | None = None):
    """2-D contour map (filled, with lines) of the heights, labelled axes and colour bar; equal aspect unless one
    range is more than 4 times the other."""
    plt = pyplot()
    levels = contour_levels(s, zmax, log) if levels is None else levels
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    cs = draw_contour(ax, s, zmax, log, levels)
    _colour_bar(fig, cs, levels, height_label(zmax, log), ax=ax, shrink=0.85)
    ax.set_title(surface_title(s.meta) if title is None else title, fontsize=9)
    fig.tight_layout()
    return fig


def contour_png(s: Surface, path: Path, zmax: float | None = None, log: bool = False, title: str | None = None,
                levels: np.ndarray | None = None) -> None:
    save_figure(contour_figure(s, zmax, log, title, levels), path)


def draw_3d(ax, s: Surface, zmax, log, vmin=None, vmax=None, small: bool = False):
    from matplotlib.ticker import MaxNLocator

    z = finite_heights(s, zmax, log)
    X, Y = np.meshgrid(s.xcoords, s.ycoords, indexing="ij")
    surf = ax.plot_surface(X, Y, z, cmap=CMAP, vmin=vmin, vmax=vmax, linewidth=0, antialiased=True)
    xl, yl = axis_labels(s.meta)
    if small:  # the contour map beside a small 3-D view carries the full axis names
        xl, yl = (label.replace(" (filter-normalized)", "") for label in (xl, yl))
    size, pad = (7, -1) if small else (8, 4)
    ax.set_xlabel(xl, fontsize=size, labelpad=pad)
    ax.set_ylabel(yl, fontsize=size, labelpad=pad)
    ax.zaxis.set_rotate_label(False)
    ax.set_zlabel(height_label(zmax, log), fontsize=size, labelpad=pad, rotation=90)
    ax.tick_params(labelsize=size - 1, pad=-2 if small else 0)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(4))
    ax.view_init(elev=30, azim=-120)
    return surf


def surface3d_figure(s: Surface, zmax: float | None = None, log: bool = False, title: str | None = None):
    """The matplotlib 3-D render: labelled axes, colour bar beside (not over) the surface, a title."""
    plt = pyplot()
    fig = plt.figure(figsize=(8, 6))
    ax = fig.add_subplot(projection="3d")
    surf = draw_3d(ax, s, zmax, log)
    bar = fig.colorbar(surf, ax=ax, shrink=0.6, pad=0.08)
    bar.set_label(height_label(zmax, log))
    bad = int((~np.isfinite(s.loss)).sum())
    note = f"\n{bad} points with non-finite loss left blank" if bad else ""
    ax.set_title((surface_title(s.meta) if title is None else title) + note, fontsize=9)
    return fig


def render_png_pyvista(s: Surface, path: Path, zmax: float | None = None, log: bool = False,
                       title: str | None = None) -> None:
    """3-D render with pyvista in a child process (landscape.pictures.offscreen); raises RuntimeError if it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        k = auto_zscale(s, zmax, log)
        mesh = surface_mesh(s, zmax, log, k)
        z = heights(s, zmax, log)
        mesh.point_data["height"] = np.ascontiguousarray(np.where(np.isfinite(z), z, np.nan).ravel(order="F"))
        finite = z[np.isfinite(z)]
        xl, yl = axis_labels(s.meta)
        spec = {"mesh": str(Path(tmp) / "surface.vts"), "png": str(Path(tmp) / "render.png"),
                "scalars": "height", "scalar_title": height_label(zmax, log), "title": title or surface_title(s.meta),
                "axes": [xl, yl, height_label(zmax, log)],
                "ranges": [float(s.xcoords.min()), float(s.xcoords.max()), float(s.ycoords.min()),
                           float(s.ycoords.max()), float(finite.min()) if finite.size else 0.0,
                           float(finite.max()) if finite.size else 1.0]}
        mesh.save(spec["mesh"])
        line = trajectory_polyline(s, zmax, log, k)
        if line is not None:
            spec["path"] = str(Path(tmp) / "path.vtp")
            line.save(spec["path"])
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        r = subprocess.run([sys.executable, "-m", "landscape.pictures.offscreen", str(Path(tmp) / "spec.json")],
                           capture_output=True, text=True, timeout=300)
        png = Path(spec["png"])
        if r.returncode != 0 or not png.is_file():
            raise RuntimeError(f"off-screen VTK render failed (exit {r.returncode})")
        data = png.read_bytes()
    atomic_write(path, lambda tmp_path: Path(tmp_path).write_bytes(data), keep_suffix=True)


def render_png(s: Surface, path: Path, zmax: float | None = None, log: bool = False, title: str | None = None) -> str:
    """3-D render: pyvista off-screen, or matplotlib when off-screen OpenGL is unavailable. Returns the backend."""
    if s.is_1d:
        return plot_curve(s, path, title)
    try:
        render_png_pyvista(s, path, zmax, log, title)
        return "pyvista"
    except (RuntimeError, OSError, subprocess.SubprocessError):  # no usable off-screen OpenGL: fall back
        save_figure(surface3d_figure(s, zmax, log, title), path)
        return "matplotlib"


def curve_figure(s: Surface, title: str | None = None):
    """1-D loss (left axis) and accuracy (right axis) against alpha or x; the checkpoints are marked (alpha = 0
    and 1 for an interpolation, x = 0 otherwise) and non-finite losses are shown on the bottom edge."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    x, loss = s.xcoords, np.asarray(s.loss, dtype=float)
    ok = np.isfinite(loss)
    ax.plot(x, np.where(ok, loss, np.nan), "b-", label="loss")
    ax.set_xlabel(axis_labels(s.meta)[0])
    ax.set_ylabel("loss", color="b")
    ax2 = ax.twinx()
    ax2.plot(x, s.acc, "g--", label="accuracy (%)")
    ax2.set_ylabel("accuracy (%)", color="g")
    if s.meta.get("kind") == "interpolate":
        marks = [(0.0, _short(s.meta.get("checkpoint", "A"))), (1.0, _short(s.meta.get("interpolate_to", "B")))]
    else:
        marks = [(0.0, _short(s.meta.get("checkpoint", "checkpoint")))]
    for a, name in marks:
        ax.axvline(a, color="0.3", ls=":", lw=1)
        ax.annotate(f"{name}\n(x = {a:g})" if s.meta.get("kind") != "interpolate" else f"{name}\n(alpha = {a:g})",
                    xy=(a, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 4), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7)
    if not ok.all():
        ax.plot(x[~ok], np.zeros((~ok).sum()), "x", color=NONFINITE_COLOUR, ms=8, clip_on=False,
                transform=ax.get_xaxis_transform(), label=f"loss not finite ({int((~ok).sum())} points)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncol=3, fontsize=8)
    ax.set_title(surface_title(s.meta) if title is None else title, fontsize=9, pad=30)
    return fig


def _short(path: str) -> str:
    """A checkpoint path as parent/name (runs/scratch-s0/ckpt_e160.pt -> scratch-s0/ckpt_e160.pt)."""
    p = Path(str(path))
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def plot_curve(s: Surface, path: Path, title: str | None = None) -> str:
    save_figure(curve_figure(s, title), path)
    return "matplotlib"
