"""Sharpness numbers beside a surface, so "smoother" is a number.

Curvature: the top eigenvalue (Lanczos) and the trace (Hutch++) of the Hessian of the mean cross-entropy over
the given images at the checkpoint, in eval mode (landscape.hessian states the estimates and their stopping
rules). ``sharpness_report`` computes them, ``sharpness`` is the public face for any classifier,
``checkpoint_sharpness`` the one for an orthokd checkpoint (landscape.plot --sharpness, Tables 7-8).

Flatness of a computed surface, in grid units: see ``flatness``.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from landscape.hessian import HessianOperator, hessian_trace, math_attention, model_loss_fn, top_eigenvalue
from landscape.record import Surface, images_used
from training.data.datasets import checkpoint_split
from training.errors import UserError
from training.store.checkpoint import load_model


def sharpness_report(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, surface: Surface | None = None, *,
                     seed: int = 0, rel_se: float = 0.02, min_samples: int = 10, max_samples: int = 2000,
                     sketch: int = 40, max_iters: int = 100, tol: float = 1e-4) -> dict[str, Any]:
    """Curvature of the mean cross-entropy on these images at the model's parameters (landscape.hessian), and,
    when a surface is given, its ``flatness`` numbers (computed on the surface's own images).

    Keys: images (N), centre_loss (L(theta*) on these N images, eval mode), lambda_max,
    lambda_max_iterations (Hessian-vector products used), lambda_max_converged, hessian_trace,
    hessian_trace_se (standard error), hutchinson_samples (probes of the deflated remainder),
    hutchpp_sketch (k), hessian_trace_products (2k + probes), trace_converged (se <= rel_se |trace| within
    max_samples probes)."""
    if images.shape[0] == 0 or images.shape[0] != labels.shape[0]:
        raise UserError(f"sharpness needs images with one label each (got {images.shape[0]} images, "
                        f"{labels.shape[0]} labels); pass a positive image count")
    if not (rel_se > 0 and tol > 0 and max_iters >= 1 and 2 <= min_samples <= max_samples and sketch >= 0):
        raise UserError("sharpness settings: rel_se and tol must be > 0, max_iters >= 1, "
                        "2 <= min_samples <= max_samples, sketch >= 0")
    loss_fn, params = model_loss_fn(model, images, labels)
    with torch.no_grad(), math_attention():
        centre = float(loss_fn(params))
    if not math.isfinite(centre):
        raise UserError(f"the loss at the checkpoint is {centre} on these images, so it has no curvature to report; "
                        "check the checkpoint's weights")
    op = HessianOperator(loss_fn, params)
    eig = top_eigenvalue(op, op.n, max_iters=max_iters, tol=tol, seed=seed, device=op.device)
    tr = hessian_trace(op, op.n, rel_se=rel_se, min_samples=min_samples,
                       max_samples=max_samples, sketch=sketch, seed=seed, device=op.device)
    report: dict[str, Any] = {
        "images": int(images.shape[0]), "centre_loss": centre,
        "lambda_max": eig.value, "lambda_max_iterations": eig.iterations, "lambda_max_converged": eig.converged,
        "hessian_trace": tr.value, "hessian_trace_se": tr.se, "hutchinson_samples": tr.samples,
        "hutchpp_sketch": min(sketch, op.n), "hessian_trace_products": tr.products, "trace_converged": tr.converged}
    if surface is not None:
        report.update(flatness(surface))
    return report


def sharpness(model: nn.Module, data: Any, *, surface: Surface | None = None, max_images: int | None = 512,
              device: torch.device | str | None = None, output_key: str = "logits", **settings: Any) -> dict[str, Any]:
    """``sharpness_report`` of a copy of ``model`` (so it is unchanged) on ``max_images`` of ``data`` (an (images,
    labels) pair, a DataLoader or a dataset, as landscape.surface takes), with the ``flatness`` numbers of
    ``surface`` when given. ``settings``: sharpness_report's (seed, rel_se, max_iters, ...). device None: cuda when
    available, else cpu. output_key: the logits' key when the model returns a mapping. Attention runs on the
    math kernel (``math_attention``), so transformers work. Bad input raises UserError (a ValueError). Also
    ``landscape.sharpness(model, data)``."""
    from training.external.data import as_tensors
    from training.external.model_output import check_model_inputs
    from training.runtime.device import resolve_device

    x, y, _ = as_tensors(data, max_images)
    model = check_model_inputs(model, x, y, output_key)
    dev = torch.device(device) if device is not None else resolve_device("auto")
    return sharpness_report(copy.deepcopy(model).to(dev), x.to(dev), y.to(dev), surface, **settings)


def hessian_images(surface: Surface | None, limit: int) -> int:
    """How many images the Hessian numbers beside ``surface`` use: the surface's own count when it used at most
    ``limit`` (the first ones, so the same images as its points), else ``limit``."""
    used = images_used(surface.meta) if surface is not None else None
    return limit if used is None else min(used, limit)


def describe_images(data: str, split: str, count: int) -> str:
    """The images behind Hessian numbers, as the sharpness JSON's ``hessian_data`` names them."""
    return f"{data} [{split}] (first {count} images)"


def checkpoint_sharpness(checkpoint: str | Path, images: int, *, split: str = "train", dataset: str | None = None,
                         data_dir: str | None = None, surface: Surface | None = None,
                         device: torch.device | str | None = None, **settings: Any) -> tuple[dict[str, Any], str]:
    """``sharpness`` of an orthokd checkpoint on the first ``hessian_images(surface, images)`` images of ``split``,
    normalized as the checkpoint was trained (training.data.datasets.checkpoint_split; ``dataset`` and
    ``data_dir`` override its own), with the ``flatness`` numbers of ``surface`` when given. ``settings``:
    sharpness_report's. Returns the report and its images described (``describe_images``)."""
    model, ckpt = load_model(checkpoint)
    data = checkpoint_split(ckpt["config"], split, hessian_images(surface, images), dataset, data_dir)
    report = sharpness(model, (data.normalized(), data.labels), surface=surface, max_images=None, device=device,
                       **settings)
    return report, describe_images(data.description, split, report["images"])


def flatness(surface: Surface, cells: tuple[int, ...] = (1, 2, 5),
             deltas: tuple[float, ...] = (0.1, 0.5, 1.0)) -> dict[str, Any]:
    """Flatness of a computed surface around its centre c (the grid point nearest the origin), in grid units:
    one cell is one grid step along an axis, whatever the coordinate spacing (grid_cell_x / grid_cell_y give
    the spacing in direction units).

    - rise_within_{k}_cells = max L(p) - L(c) over grid points p with Chebyshev distance
      max(|i - i_c|, |j - j_c|) <= k (a (2k+1) x (2k+1) window cut at the grid's edge; 1-D: |i - i_c| <= k).
    - basin_area_below_centre_plus_{d} = number of grid points in the 4-connected region (scipy.ndimage.label,
      edge neighbours only) of {p : L(p) <= L(c) + d} that contains c: low ground elsewhere, not joined to the
      centre, does not count. 1-D: the length, in points, of the run of such points through c.
    - basin_fraction_below_centre_plus_{d} = that count / number of grid points.
    A non-finite loss (a diverged point) lies above every level: it makes a rise inf and is never in a basin."""
    loss = np.asarray(surface.loss, dtype=np.float64)
    if np.isnan(loss).all():
        raise UserError("flatness needs a computed surface; run the surface to completion first")
    c = surface.centre_index()
    centre = float(loss[c])
    high = np.where(np.isfinite(loss), loss, np.inf)
    out: dict[str, Any] = {"surface_centre_loss": centre, "surface_images": images_used(surface.meta),
                           "grid_points": int(loss.size), "grid_cell_x": _spacing(surface.xcoords),
                           "grid_cell_y": None if surface.is_1d else _spacing(surface.ycoords)}
    for k in cells:
        window = tuple(slice(max(i - k, 0), i + k + 1) for i in c)
        out[f"rise_within_{k}_cells"] = float(high[window].max() - centre)
    for d in deltas:
        regions, _ = ndimage.label(high <= centre + d)  # default structure: edge (4-) connectivity
        area = int(np.count_nonzero(regions == regions[c])) if regions[c] else 0
        out[f"basin_area_below_centre_plus_{d:g}"] = area
        out[f"basin_fraction_below_centre_plus_{d:g}"] = area / loss.size
    return out


def summary_line(r: dict[str, Any], same_images: bool) -> str:
    """One line naming the images behind each number of a ``sharpness_report`` made with a surface."""
    def flag(ok: bool) -> str:
        return "" if ok else ", NOT converged"

    return (f"sharpness on {r['images']} images{' (the surface images)' if same_images else ''}: centre loss "
            f"{r['centre_loss']:.4f}, lambda_max {r['lambda_max']:.4g} ({r['lambda_max_iterations']} Lanczos steps"
            f"{flag(r['lambda_max_converged'])}), Hessian trace {r['hessian_trace']:.4g} +- {r['hessian_trace_se']:.2g}"
            f" (standard error, {r['hutchinson_samples']} probes{flag(r['trace_converged'])}); surface on "
            f"{r['surface_images']} images: centre loss {r['surface_centre_loss']:.4f}, rise within 1/2/5 grid cells "
            f"{r['rise_within_1_cells']:.4g}/{r['rise_within_2_cells']:.4g}/{r['rise_within_5_cells']:.4g}, basin "
            f"below centre + 0.1/0.5/1: {r['basin_area_below_centre_plus_0.1']}/{r['basin_area_below_centre_plus_0.5']}"
            f"/{r['basin_area_below_centre_plus_1']} of {r['grid_points']} grid points")


def _spacing(coords: np.ndarray) -> float | None:
    return float((coords[-1] - coords[0]) / (len(coords) - 1)) if len(coords) > 1 else None

