"""Titles and axis labels of surface pictures, taken from the surface metadata (method, epoch, arch, grid,
data, split, kind): e.g. "scratch, epoch 160; resnet56; 51x51 grid; 50,000 train images"."""
from __future__ import annotations

from typing import Any

from landscape.record import images_used


def grid_text(meta: dict[str, Any]) -> str:
    g = meta.get("grid", {})
    nx, ny = g.get("xsteps"), g.get("ysteps")
    if nx is None:
        return "grid ?"
    return f"{nx} points" if not ny else f"{nx}x{ny} grid"


def surface_title(meta: dict[str, Any]) -> str:
    """One line naming what the picture shows: method, epoch, architecture, grid and images (a surface of a model
    from outside orthokd, landscape.surface, has no method and epoch: its model's name comes first)."""
    arch = meta.get("arch") or {}
    model = arch.get("name", "?") + (f" width {arch['width']}" if arch.get("width") else "")
    n = images_used(meta)
    images = f"{n:,} {meta.get('split', '')} images".replace("  ", " ") if n is not None else "images ?"
    trained = "" if "model" in meta else f"{meta.get('method', '?')}, epoch {meta.get('epoch', '?')}; "
    return f"{trained}{model}; {grid_text(meta)}; {images}"


def axis_labels(meta: dict[str, Any]) -> tuple[str, str]:
    """x and y axis names: alpha for an interpolation, PC1/PC2 (with explained variance when the metadata has
    trajectory_explained_variance_ratio) for a trajectory surface, else the filter-normalized random directions."""
    kind = meta.get("kind")
    if kind == "interpolate":
        return "alpha (0 = first checkpoint, 1 = second)", ""
    if kind == "trajectory":
        ratio = meta.get("trajectory_explained_variance_ratio") or []
        return tuple(f"PC{i + 1}" + (f" ({100 * ratio[i]:.1f}% var)" if i < len(ratio) else "")
                     for i in range(2))  # type: ignore[return-value]
    return "direction 1 (filter-normalized)", "direction 2 (filter-normalized)"
