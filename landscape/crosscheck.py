"""``landscape.plot --engine loss-landscapes``: the same Li surface computed through the loss-landscapes library
(``loss_landscapes.planar_interpolation``), as an independent check of orthokd's engine.

planar_interpolation(start, end_one, end_two, metric, steps=S) walks the plane start + i u + j v with
u = (end_one - start) / S and v = (end_two - start) / S, i = 0..S-1, in a zig-zag: even columns i hold
j = 1..S (it steps before it evaluates), odd columns j = 0..S-1. With the grid a_i = xmin + i dx_step,
b_m = ymin + m dy_step (m = 0..NY-1), orthokd's directions d_x, d_y and S = max(NX, NY) + 1, we start one y step
low, start = theta* + xmin d_x + (ymin - dy_step) d_y, with end_one = start + S dx_step d_x and
end_two = start + S dy_step d_y: entry k of column i lies j = k + 1 (even i) or j = k (odd i) y steps from start,
at b_(j-1), so L(a_i, b_m) = M[i][m] for even i and M[i][m + 1] for odd i. The library moves parameters only: BN
statistics stay the model's (Li's convention), the model is in eval mode, and every point is the mean loss and
the accuracy (%) over all images. 2-D grids only, fp32, the plain (unfolded) network; it evaluates S^2 points,
so it is slower than the default engine, which stays the one to use.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from landscape.config import GridSpec
from landscape.directions import Direction
from training.errors import UserError


def _shifted(model: nn.Module, dirs: list[Direction], coefs: tuple[float, float]) -> nn.Module:
    """A copy of ``model`` at theta* + coefs[0] d_x + coefs[1] d_y (parameters only)."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in m.named_parameters():
            for c, d in zip(coefs, dirs):
                if name in d:
                    p.add_(d[name].to(p.device, p.dtype), alpha=c)
    return m


def loss_landscapes_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, spec: GridSpec,
                         dirs: list[Direction], device: torch.device, batch_size: int,
                         loss: Callable[..., torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """(loss, accuracy %) on ``spec``'s grid, indexed [ix, iy] as orthokd's surfaces, from
    loss_landscapes.planar_interpolation (module docstring)."""
    try:
        from loss_landscapes import planar_interpolation
        from loss_landscapes.metrics import Metric
    except ImportError:
        raise UserError(
            "--engine loss-landscapes needs the loss-landscapes package: pip install loss-landscapes"
        ) from None
    if spec.is_1d or len(dirs) != 2:
        raise UserError("--engine loss-landscapes computes 2-D surfaces only; drop --1d/--interpolate or use the "
                        "default engine")
    nx, ny = spec.xsteps, spec.ysteps
    dx = (spec.xmax - spec.xmin) / (nx - 1) if nx > 1 else 0.0
    dy = (spec.ymax - spec.ymin) / (ny - 1) if ny > 1 else 0.0
    steps = max(nx, ny) + 1
    base = copy.deepcopy(model).to(device).eval()
    start = _shifted(base, dirs, (spec.xmin, spec.ymin - dy))
    end_one = _shifted(base, dirs, (spec.xmin + steps * dx, spec.ymin - dy))
    end_two = _shifted(base, dirs, (spec.xmin, spec.ymin - dy + steps * dy))
    x, y = images.to(device), labels.to(device)

    class MeanLossAndAccuracy(Metric):
        def __call__(self, wrapper) -> tuple[float, float]:
            total, correct = 0.0, 0
            with torch.no_grad():
                for i in range(0, len(y), batch_size):
                    out = wrapper.forward(x[i:i + batch_size]).float()
                    total += float(loss(out, y[i:i + batch_size], reduction="none").double().sum())
                    correct += int((out.argmax(1) == y[i:i + batch_size]).sum())
            return total / len(y), 100.0 * correct / len(y)

    grid = planar_interpolation(start, end_one, end_two, MeanLossAndAccuracy(), steps=steps, deepcopy_model=False)
    rows = np.asarray(grid, dtype=np.float64)  # (S columns along x, S entries along y, [loss, acc])
    picked = np.stack([rows[i, np.arange(ny) + (i % 2)] for i in range(nx)])  # undo the zig-zag offset
    return picked[..., 0], picked[..., 1]
