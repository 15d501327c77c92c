"""Heights of a surface, shared by its files and its pictures: the loss (or its log) above its minimum, clipped at
zmax, times a z-scale (automatic: the z extent is Z_EXTENT_RATIO of the larger of the x and y extents)."""
from __future__ import annotations

import math

import numpy as np

from landscape.record import Surface
from training.errors import UserError

Z_EXTENT_RATIO = 0.5  # default: z extent of the file = 0.5 x the larger of the x and y extents


def log_loss(loss: np.ndarray) -> np.ndarray:
    """ln(loss + 0.1), Li et al.'s log scale."""
    return np.log(np.asarray(loss, dtype=float) + 0.1)


def loss_heights(loss: np.ndarray, zmax: float | None = None, log: bool = False) -> np.ndarray:
    """[ln](min(loss, zmax) [+ 0.1]): clip at zmax first, then the log. Non-finite losses stay non-finite
    (NaN clipped stays NaN; +inf clipped becomes zmax)."""
    z = np.asarray(loss, dtype=float)
    if zmax is not None:
        z = np.minimum(z, zmax)
    return log_loss(z) if log else z


def heights(s: Surface, zmax: float | None = None, log: bool = False, zscale: float = 1.0) -> np.ndarray:
    """zscale * loss_heights of the surface's losses."""
    return loss_heights(s.loss, zmax, log) * zscale


def height_label(zmax: float | None, log: bool) -> str:
    """The height formula as a reader sees it, e.g. 'ln(min(loss, 5) + 0.1)'."""
    inner = "loss" if zmax is None else f"min(loss, {zmax:g})"
    return f"ln({inner} + 0.1)" if log else inner


def check_zscale(zscale: float | None) -> None:
    if zscale is not None and not (math.isfinite(zscale) and zscale > 0):
        raise UserError(f"--zscale {zscale}: use a positive finite number (or leave it out for the automatic scale)")


def _filled(z: np.ndarray) -> np.ndarray:
    """Non-finite heights replaced by the largest finite height (0 if none is finite)."""
    finite = np.isfinite(z)
    top = float(z[finite].max()) if finite.any() else 0.0
    return np.where(finite, z, top)


def scaled_heights(h: np.ndarray, k: float) -> np.ndarray:
    """``_filled(h) * k``, the VTK heights; refused when the product is not finite (a huge ``--zscale`` would write
    inf heights that ParaView cannot draw), checked before anything is written."""
    with np.errstate(over="ignore"):  # the overflow is reported below, as one line
        z = _filled(h) * k
    if not np.isfinite(z).all():
        top = float(np.abs(_filled(h)).max())
        raise UserError(f"--zscale {k:g} times the largest height {top:g} overflows float64; use a --zscale below "
                        f"{np.finfo(float).max / max(top, 1.0):.3g} (or leave it out for the automatic scale)")
    return z


def auto_zscale(s: Surface, zmax: float | None = None, log: bool = False) -> float:
    """Z_EXTENT_RATIO * max(x extent, y extent) / (finite height extent); 1 for a flat or single-point surface."""
    z = heights(s, zmax, log)
    z = z[np.isfinite(z)]
    plane = max(np.ptp(s.xcoords) if s.xcoords.size else 0.0, np.ptp(s.ycoords) if s.ycoords.size else 0.0)
    span = float(np.ptp(z)) if z.size else 0.0
    if span <= 0 or plane <= 0:
        return 1.0
    return Z_EXTENT_RATIO * float(plane) / span


def resolve_zscale(s: Surface, zmax: float | None, log: bool, zscale: float | None) -> float:
    check_zscale(zscale)
    return auto_zscale(s, zmax, log) if zscale is None else float(zscale)
