"""Multi-surface pictures: the Tables 7-8 panels (rows x columns of surfaces, each a 3-D view beside its
contour map, on one colour scale) and an animation across several surfaces (GIF), built from the single-surface
drawing functions of landscape.pictures.render."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landscape.heights import height_label
from landscape.labels import surface_title
from landscape.pictures.render import CMAP, draw_3d, draw_contour, finite_heights, pyplot, save_figure
from landscape.record import Surface
from training.store.files import atomic_write


def shared_limits(surfaces: Sequence[Surface], zmax: float | None, log: bool) -> tuple[float, float]:
    zs = np.concatenate([finite_heights(s, zmax, log).ravel() for s in surfaces])
    return float(np.nanmin(zs)), float(np.nanmax(zs))


def panels_figure(grid: Sequence[Sequence[Surface]], row_labels: Sequence[str], col_labels: Sequence[str],
                  zmax: float | None = None, log: bool = False, title: str = ""):
    """Rows x columns of surfaces, each a 3-D view beside its contour map, all on one colour scale; row labels
    on the left, column labels on top, one labelled colour bar. Returns (figure, panel titles in drawing order)."""
    plt = pyplot()
    rows, cols = len(grid), len(grid[0])
    vmin, vmax = shared_limits([s for r in grid for s in r], zmax, log)
    levels = np.linspace(vmin, vmax, 21) if vmax > vmin else np.array([vmin - 0.5, vmin + 0.5])
    drawn: list[str] = []
    fig = plt.figure(figsize=(6.2 * cols + 1.6, 3.0 * rows + 1.0))
    top = 1 - 0.9 / (3.0 * rows + 1.0)
    gs = fig.add_gridspec(rows, 2 * cols, width_ratios=[1.2, 1.0] * cols, wspace=0.35, hspace=0.35,
                          left=0.07, right=0.9, top=top, bottom=0.6 / (3.0 * rows + 1.0))
    for i, row in enumerate(grid):
        for j, s in enumerate(row):
            ax3 = fig.add_subplot(gs[i, 2 * j], projection="3d")
            draw_3d(ax3, s, zmax, log, vmin, vmax, small=True)
            ax3.set_zlim(vmin, vmax)
            axc = fig.add_subplot(gs[i, 2 * j + 1])
            draw_contour(axc, s, zmax, log, levels, small=True)
            axc.tick_params(labelsize=6)
            if i == 0:
                x_mid = (gs[0, 2 * j].get_position(fig).x0 + gs[0, 2 * j + 1].get_position(fig).x1) / 2
                fig.text(x_mid, top + 0.25 / (3.0 * rows + 1.0), col_labels[j], ha="center", va="bottom",
                         fontsize=10, weight="bold")
            if j == 0:
                pos = gs[i, 0].get_position(fig)
                fig.text(0.012, (pos.y0 + pos.y1) / 2, row_labels[i], rotation=90, ha="left", va="center",
                         fontsize=10, weight="bold")
            drawn.append(f"{row_labels[i]} | {col_labels[j]}")
    sm = plt.cm.ScalarMappable(cmap=CMAP, norm=plt.Normalize(vmin, vmax))
    fig.colorbar(sm, cax=fig.add_axes([0.925, 0.15, 0.012, 0.7])).set_label(height_label(zmax, log), fontsize=11)
    if title:
        fig.suptitle(title, y=0.995, fontsize=11)
    return fig, drawn


def panels_png(grid: Sequence[Sequence[Surface]], row_labels: Sequence[str], col_labels: Sequence[str], path: Path,
               zmax: float | None = None, log: bool = False, title: str = "") -> list[str]:
    """Write panels_figure to ``path``; returns the panel titles in drawing order."""
    fig, drawn = panels_figure(grid, row_labels, col_labels, zmax, log, title)
    save_figure(fig, path, dpi=120)
    return drawn


def animation_frames(surfaces: Sequence[Surface], labels: Sequence[str], zmax: float | None = None,
                     log: bool = False):
    """The figure of the animation and frame(k), which draws surface k on the shared colour scale with its
    label, the surface's method, epoch, grid and images as title, labelled axes and one colour bar."""
    plt = pyplot()
    vmin, vmax = shared_limits(surfaces, zmax, log)
    fig = plt.figure(figsize=(7.5, 5.6))
    ax = fig.add_subplot(projection="3d")
    sm = plt.cm.ScalarMappable(cmap=CMAP, norm=plt.Normalize(vmin, vmax))
    fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.08).set_label(height_label(zmax, log))

    def frame(k: int):
        ax.clear()
        draw_3d(ax, surfaces[k], zmax, log, vmin, vmax)
        ax.set_zlim(vmin, vmax)
        ax.set_title(f"{labels[k]}\n{surface_title(surfaces[k].meta)}", fontsize=9)
        return ax

    return fig, frame


def animate(surfaces: Sequence[Surface], labels: Sequence[str], path: Path, zmax: float | None = None,
            log: bool = False, fps: int = 1) -> None:
    """A GIF stepping through ``surfaces`` (e.g. one method at each LR decay), frames from animation_frames."""
    plt = pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, frame = animation_frames(surfaces, labels, zmax, log)
    anim = FuncAnimation(fig, frame, frames=len(surfaces))
    atomic_write(path, lambda tmp: anim.save(tmp, writer=PillowWriter(fps=fps)), keep_suffix=True)
    plt.close(fig)
