"""Pictures of surfaces (DESIGN §6.6): a 3-D render (pyvista off-screen through EGL, matplotlib when that
fails), a 2-D contour map, a multi-panel figure (rows x columns of surfaces on one colour scale) and an
animation across several surfaces (GIF)."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from landscape.store import Surface
from landscape.vtkio import heights, surface_mesh, trajectory_polyline
from training.checkpoint import atomic_write


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_png_pyvista(s: Surface, path: Path, zmax: float | None = None, log: bool = False, title: str = "") -> None:
    """3-D render with pyvista in a child process (landscape.offscreen); raises RuntimeError if it fails."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mesh = Path(tmp) / "surface.vts"
        surface_mesh(s, zmax, log).save(mesh)
        extra = []
        line = trajectory_polyline(s, zmax, log)
        if line is not None:
            extra = [str(Path(tmp) / "path.vtp")]
            line.save(extra[0])
        png = Path(tmp) / "render.png"
        r = subprocess.run([sys.executable, "-m", "landscape.offscreen", str(mesh), str(png),
                            "log_loss" if log else "loss", title, *extra], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not png.is_file():
            raise RuntimeError(f"off-screen VTK render failed (exit {r.returncode})")
        data = png.read_bytes()
    atomic_write(path, lambda tmp_path: Path(tmp_path).write_bytes(data), keep_suffix=True)


def _plot_3d(ax, s: Surface, zmax, log, vmin=None, vmax=None) -> None:
    z = heights(s, zmax, log)
    X, Y = np.meshgrid(s.xcoords, s.ycoords, indexing="ij")
    ax.plot_surface(X, Y, z, cmap="viridis", vmin=vmin, vmax=vmax, linewidth=0, antialiased=True)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _plot_contour(ax, s: Surface, zmax, log, levels, vmin=None, vmax=None):
    z = heights(s, zmax, log)
    X, Y = np.meshgrid(s.xcoords, s.ycoords, indexing="ij")
    cs = ax.contourf(X, Y, z, levels=levels, cmap="viridis", vmin=vmin, vmax=vmax)
    ax.contour(X, Y, z, levels=levels, colors="k", linewidths=0.3)
    coords = s.meta.get("trajectory_coords")
    if coords and np.asarray(coords).shape[1] == 2:
        c = np.asarray(coords)
        ax.plot(c[:, 0], c[:, 1], "r.-", lw=1.5)
    ax.set_aspect("equal")
    return cs


def render_png(s: Surface, path: Path, zmax: float | None = None, log: bool = False, title: str = "") -> str:
    """3-D render: pyvista off-screen, or matplotlib when off-screen OpenGL is unavailable. Returns the backend."""
    if s.is_1d:
        return plot_curve(s, path, title)
    try:
        render_png_pyvista(s, path, zmax, log, title)
        return "pyvista"
    except (RuntimeError, OSError, subprocess.SubprocessError):  # no usable off-screen OpenGL: fall back
        plt = _mpl()
        fig = plt.figure(figsize=(7, 5))
        ax = fig.add_subplot(projection="3d")
        _plot_3d(ax, s, zmax, log)
        ax.set_title(title)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110), keep_suffix=True)
        plt.close(fig)
        return "matplotlib"


def plot_curve(s: Surface, path: Path, title: str = "") -> str:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(s.xcoords, s.loss, "b-", label="loss")
    ax.set_xlabel("alpha" if s.meta.get("kind") == "interpolate" else "x")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(s.xcoords, s.acc, "r--", label="accuracy (%)")
    ax2.set_ylabel("accuracy (%)")
    ax.set_title(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110), keep_suffix=True)
    plt.close(fig)
    return "matplotlib"


def contour_png(s: Surface, path: Path, zmax: float | None = None, log: bool = False, title: str = "",
                levels: int = 30) -> None:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    cs = _plot_contour(ax, s, zmax, log, levels)
    fig.colorbar(cs, ax=ax, label="ln(loss+0.1)" if log else "loss")
    ax.set_title(title)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110), keep_suffix=True)
    plt.close(fig)


def shared_limits(surfaces: Sequence[Surface], zmax: float | None, log: bool) -> tuple[float, float]:
    zs = np.concatenate([heights(s, zmax, log).ravel() for s in surfaces])
    return float(np.nanmin(zs)), float(np.nanmax(zs))


def panels_png(grid: Sequence[Sequence[Surface]], row_labels: Sequence[str], col_labels: Sequence[str], path: Path,
               zmax: float | None = None, log: bool = False, title: str = "") -> list[str]:
    """Rows x columns of surfaces; each panel is a 3-D surface beside its contour, all on one colour scale.
    Returns the panel titles in drawing order."""
    plt = _mpl()
    rows, cols = len(grid), len(grid[0])
    vmin, vmax = shared_limits([s for r in grid for s in r], zmax, log)
    levels = np.linspace(vmin, vmax, 25)
    drawn: list[str] = []
    fig = plt.figure(figsize=(5.6 * cols + 0.8, 2.9 * rows + 0.7))
    gs = fig.add_gridspec(rows, 2 * cols, width_ratios=[1.25, 1.0] * cols, wspace=0.28, hspace=0.35,
                          left=0.02, right=0.9, top=0.9 if title else 0.95, bottom=0.05)
    for i, row in enumerate(grid):
        for j, s in enumerate(row):
            ax3 = fig.add_subplot(gs[i, 2 * j], projection="3d")
            _plot_3d(ax3, s, zmax, log, vmin, vmax)
            ax3.set_zlim(vmin, vmax)
            ax3.set_xlabel("")
            ax3.set_ylabel("")
            ax3.tick_params(labelsize=5, pad=0)
            axc = fig.add_subplot(gs[i, 2 * j + 1])
            _plot_contour(axc, s, zmax, log, levels, vmin, vmax)
            axc.tick_params(labelsize=6)
            axc.set_title(f"{row_labels[i]} | {col_labels[j]}", fontsize=8, loc="right")
            drawn.append(f"{row_labels[i]} | {col_labels[j]}")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(vmin, vmax))
    fig.colorbar(sm, cax=fig.add_axes([0.925, 0.15, 0.012, 0.7]), label="ln(loss+0.1)" if log else "loss")
    if title:
        fig.suptitle(title)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100), keep_suffix=True)
    plt.close(fig)
    return drawn


def animate(surfaces: Sequence[Surface], labels: Sequence[str], path: Path, zmax: float | None = None,
            log: bool = False, fps: int = 1) -> None:
    """A GIF stepping through ``surfaces`` (e.g. one method at each LR decay) on one colour scale."""
    plt = _mpl()
    from matplotlib.animation import FuncAnimation, PillowWriter

    vmin, vmax = shared_limits(surfaces, zmax, log)
    fig = plt.figure(figsize=(6, 4.5))
    ax = fig.add_subplot(projection="3d")

    def frame(k: int):
        ax.clear()
        _plot_3d(ax, surfaces[k], zmax, log, vmin, vmax)
        ax.set_zlim(vmin, vmax)
        ax.set_title(labels[k])

    anim = FuncAnimation(fig, frame, frames=len(surfaces))
    atomic_write(path, lambda tmp: anim.save(tmp, writer=PillowWriter(fps=fps)), keep_suffix=True)
    plt.close(fig)
