"""Directions in parameter space.

A direction is a dict {name: tensor} over the model's floating-point state (parameters, and for
checkpoint interpolation also BN running statistics); names absent from it do not move.

Random directions (Li et al. 2018): for each parameter tensor in ``model.named_parameters()`` order,
d ~ N(0, 1) from one generator seeded with ``seed`` (x first, then y from the same stream). Filter
normalization: for each tensor with >= 2 dims, every slice d_f along dim 0 is rescaled
d_f <- d_f * ||w_f|| / (||d_f|| + 1e-10). 1-D tensors (biases, BN gamma/beta) get zero direction unless
``include_biasbn``, which sets d = w for them (Li's net_plotter with ignore=''); their Gaussian draws are
made either way, so the stream of the other tensors does not depend on the flag.

Trajectory directions (Li's projection.py): PCA of the rows theta_i - theta* over the saved checkpoints,
the rows centred over i before the SVD (as sklearn's PCA does); the path's coordinates are the projections
of the uncentred rows onto the two unit components.
"""
from __future__ import annotations

import torch
from torch import nn

from training.errors import UserError

Direction = dict[str, torch.Tensor]


def filter_normalize(d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """d_f * ||w_f|| / (||d_f|| + 1e-10) for every slice f of ``d`` along dim 0."""
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
            if w.dim() > 1:
                d[name] = filter_normalize(r, w)
            else:
                d[name] = w.clone() if include_biasbn else torch.zeros_like(w)
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


def _unflatten(flat: torch.Tensor, like: dict[str, torch.Tensor], names: list[str]) -> Direction:
    d, i = {}, 0
    for n in names:
        m = like[n].numel()
        d[n] = flat[i : i + m].reshape(like[n].shape).to(like[n].dtype)
        i += m
    return d


def pca_directions(origin: dict[str, torch.Tensor], path: list[dict[str, torch.Tensor]], names: list[str]
                   ) -> tuple[list[Direction], torch.Tensor, list[float]]:
    """The two principal directions of the training path around ``origin`` (Li et al.'s trajectory plot).

    R = rows theta_i - origin over ``names``; C = R - mean_i(R); C = U S V^T. The directions are the first
    two rows of V^T (unit norm, sign chosen so each one's largest-magnitude entry is positive, as sklearn
    >= 1.5), the explained variance ratios S_k^2 / sum(S^2), and the path's coordinates R V[:, :2]. A path
    whose centred rows span one dimension is completed with a unit vector orthogonal to the first (ratio 0).
    Returns (directions, coordinates (N, 2), ratios)."""
    rows = torch.stack([flatten({n: p[n] - origin[n] for n in names}, names) for p in path])
    centred = rows - rows.mean(dim=0, keepdim=True)
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
    if sv.numel() == 0 or float(sv[0]) == 0.0:
        raise UserError("the checkpoints of the training path are all identical; --trajectory needs a path that moves")
    ratios = (sv**2 / (sv**2).sum()).tolist()
    dirs_flat = []
    for k in range(min(2, vh.shape[0])):
        if float(sv[k]) > 1e-12 * float(sv[0]):
            v = vh[k]
            dirs_flat.append(v if v[v.abs().argmax()] > 0 else -v)
    while len(dirs_flat) < 2:  # rank-1 path: any unit vector orthogonal to the first spans the plane
        v = torch.randn(rows.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        for u in dirs_flat:
            v -= (v @ u) * u
        dirs_flat.append(v / v.norm())
        ratios = ratios[:1] + [0.0]
    coords = rows @ torch.stack(dirs_flat).T
    return [_unflatten(flat, origin, names) for flat in dirs_flat], coords, [float(r) for r in ratios[:2]]
