"""Sharpness numbers beside a surface (DESIGN §6.7), so "smoother" is a number.

Curvature of the mean cross-entropy at the checkpoint (eval mode, BN statistics frozen), through
Hessian-vector products Hv = d/de grad L(theta + e v) computed with ``torch.func.jvp`` over ``grad``:
- top eigenvalue by power iteration: v <- Hv / ||Hv||, lambda = v . Hv;
- Hutchinson's trace estimate: tr(H) ~ mean over Rademacher v of v . Hv.
Flatness of the surface itself: the loss rise max(L) - L(centre) within radius r of the centre, and the
area of the plane where L <= L(centre) + delta.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp

from landscape.store import Surface

Params = dict[str, torch.Tensor]

# torch.func.jvp loads torch's own jit-scripted decompositions, which warn that torch.jit.script is deprecated.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def hvp_fn(loss_fn: Callable[[Params], torch.Tensor], params: Params) -> Callable[[Params], Params]:
    g = grad(loss_fn)
    return lambda v: jvp(g, (params,), (v,))[1]


def top_eigenvalue(loss_fn: Callable[[Params], torch.Tensor], params: Params, iters: int = 20, seed: int = 0,
                   tol: float = 1e-4) -> float:
    """Largest-magnitude Hessian eigenvalue by power iteration."""
    hvp = hvp_fn(loss_fn, params)
    g = torch.Generator().manual_seed(seed)
    v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for k, p in params.items()}
    norm = torch.sqrt(_dot(v, v))
    v = {k: t / norm for k, t in v.items()}
    lam = 0.0
    for _ in range(iters):
        hv = hvp(v)
        new = float(_dot(v, hv))
        norm = torch.sqrt(_dot(hv, hv))
        v = {k: t / norm for k, t in hv.items()}
        if abs(new - lam) <= tol * max(1.0, abs(new)):
            return new
        lam = new
    return lam


def hutchinson_trace(loss_fn: Callable[[Params], torch.Tensor], params: Params, samples: int = 20, seed: int = 0) -> float:
    hvp = hvp_fn(loss_fn, params)
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(samples):
        v = {k: (torch.randint(0, 2, p.shape, generator=g) * 2 - 1).to(p.device, p.dtype) for k, p in params.items()}
        total += float(_dot(v, hvp(v)))
    return total / samples


def model_loss_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[Callable, Params]:
    """Mean cross-entropy as a function of the parameters (eval mode, buffers fixed)."""
    model = model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p: Params) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, (p, buffers), (images,)), labels)

    return loss, params


def flatness(s: Surface, radii=(0.1, 0.25, 0.5, 1.0), deltas=(0.1, 0.5, 1.0)) -> dict[str, float]:
    """Loss rise within radius r of the grid point nearest the origin (the centre), and plane area
    (coordinate units^2, one grid cell per point) with loss <= centre + delta."""
    c = s.centre_index()
    centre = float(s.loss[c])
    if s.is_1d:
        r = np.abs(s.xcoords - s.xcoords[c[0]])
        cell = (s.xcoords[-1] - s.xcoords[0]) / max(len(s.xcoords) - 1, 1)
    else:
        X, Y = np.meshgrid(s.xcoords, s.ycoords, indexing="ij")
        r = np.hypot(X - s.xcoords[c[0]], Y - s.ycoords[c[1]])  # distance from the centre point
        cell = ((s.xcoords[-1] - s.xcoords[0]) / max(len(s.xcoords) - 1, 1)) * (
            (s.ycoords[-1] - s.ycoords[0]) / max(len(s.ycoords) - 1, 1))
    out = {"centre_loss": centre}
    for rad in radii:
        inside = r <= rad + 1e-12
        out[f"rise_within_r{rad:g}"] = float(np.nanmax(s.loss[inside]) - centre)
    for d in deltas:
        out[f"area_below_centre_plus_{d:g}"] = float(np.sum(s.loss <= centre + d) * cell)
    return out


def sharpness_report(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, surface: Surface | None,
                     iters: int = 20, samples: int = 10, seed: int = 0) -> dict[str, float]:
    loss_fn, params = model_loss_fn(model, images, labels)
    report = {"images": int(images.shape[0]), "power_iterations": iters, "hutchinson_samples": samples,
              "lambda_max": top_eigenvalue(loss_fn, params, iters, seed),
              "hessian_trace": hutchinson_trace(loss_fn, params, samples, seed)}
    if surface is not None and surface.done:
        report.update(flatness(surface))
    return report
