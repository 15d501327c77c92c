"""Directions in parameter space (DESIGN §6.1).

A direction is a dict {name: tensor} over the model's floating-point state (parameters, and for
checkpoint interpolation also BN running statistics); names absent from it do not move.

Random directions (Li et al. 2018): for each parameter tensor in ``model.named_parameters()`` order,
d ~ N(0, 1) from one generator seeded with ``seed`` (x first, then y from the same stream). Filter
normalization: for each tensor with >= 2 dims, every slice d_f along dim 0 is rescaled
d_f <- d_f * ||w_f|| / (||d_f|| + 1e-10). 1-D tensors (biases, BN gamma/beta) get zero direction unless
``include_biasbn``, which filter-normalizes each as one slice.
"""
from __future__ import annotations

import torch
from torch import nn

Direction = dict[str, torch.Tensor]


def filter_normalize(d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Rescale each slice of ``d`` along dim 0 to the norm of the same slice of ``w`` (a 1-D tensor is one slice)."""
    if d.dim() <= 1:
        return d * (w.norm() / (d.norm() + 1e-10))
    dn = d.reshape(d.shape[0], -1).norm(dim=1)
    wn = w.reshape(w.shape[0], -1).norm(dim=1)
    return d * (wn / (dn + 1e-10)).view(-1, *([1] * (d.dim() - 1)))


def random_directions(model: nn.Module, count: int, seed: int = 123, include_biasbn: bool = False) -> list[Direction]:
    """``count`` filter-normalized Gaussian directions (Li et al.), drawn on the CPU so they do not
    depend on the device."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        d: Direction = {}
        for name, w in model.named_parameters():
            w = w.detach().cpu()
            r = torch.randn(w.shape, generator=g, dtype=w.dtype)
            d[name] = filter_normalize(r, w) if (w.dim() > 1 or include_biasbn) else torch.zeros_like(w)
        out.append(d)
    return out


def float_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and floating-point buffers (BN running mean/var), detached, on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> Direction:
    """b - a over the floating-point state (used by checkpoint interpolation)."""
    return {k: b[k] - a[k] for k in a}


def flatten(d: Direction, names: list[str]) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1).double() for n in names])


def cosine(a: Direction, b: Direction) -> float:
    names = sorted(set(a) & set(b))
    fa, fb = flatten(a, names), flatten(b, names)
    return float(fa @ fb / (fa.norm() * fb.norm() + 1e-30))


def pca_directions(origin: dict[str, torch.Tensor], path: list[dict[str, torch.Tensor]], names: list[str]
                   ) -> tuple[list[Direction], torch.Tensor]:
    """The two principal directions of the training path around ``origin`` (Li et al.'s trajectory plot):
    rows theta_i - origin over ``names``, SVD, top-2 right singular vectors (unit norm). Returns the
    directions and the path's coordinates (N, 2) = projections on them."""
    rows = torch.stack([flatten({n: p[n] - origin[n] for n in names}, names) for p in path])
    _, _, vh = torch.linalg.svd(rows, full_matrices=False)
    k = min(2, vh.shape[0])
    dirs_flat = [vh[i] for i in range(k)]
    while len(dirs_flat) < 2:  # a path of one difference spans one direction; complete with an orthogonal one
        v = torch.randn(rows.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        for u in dirs_flat:
            v -= (v @ u) * u
        dirs_flat.append(v / v.norm())
    coords = rows @ torch.stack(dirs_flat).T
    dirs = []
    for flat in dirs_flat:
        d, i = {}, 0
        for n in names:
            m = origin[n].numel()
            d[n] = flat[i : i + m].reshape(origin[n].shape).to(origin[n].dtype)
            i += m
        dirs.append(d)
    return dirs, coords
