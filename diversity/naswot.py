"""NASWOT scores (Mellor et al., "Neural Architecture Search without Training").

v1 (arXiv v1, the version Table 6 uses): J = d(sum of all logits)/d(input), one row per image, flattened
to (N, 3*32*32) and taken in float64; C = corrcoef(J); with the eigenvalues v of C and k = 1e-5,
    score = -sum_i [ log(v_i + k) + 1 / (v_i + k) ].
Each term is >= 1 + log(1 + k) - ... minimal at v = 1 - k, so score <= -N (about -N when C = I).
v2 (ICML 2021): binary codes c of every ReLU's output (1 where > 0), K = sum over ReLUs of
(c c^T + (1 - c)(1 - c)^T) (number of units minus Hamming distance), score = log|det K|.
v2 is on another scale (about +1.6e3 for ResNet-56) and is not comparable with Table 6.

``naswot(model, images)`` (also as ``diversity.naswot(model, images)``) scores any classifier on one batch.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn

from training.backends import ieee_fp32
from training.callable_module import make_callable
from training.errors import UserError


def scoring_copy(model: nn.Module, bn_mode: str) -> nn.Module:
    """A copy of the model in the BN mode asked for, with frozen weights: scoring in train mode updates
    the copy's running statistics, never the checkpoint's."""
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)  # same math, faster convolutions
    m.train(bn_mode == "train")
    m.requires_grad_(False)  # only the input gradient is needed; skips the weight-gradient convolutions
    return m


def batch_jacobian(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """NASWOT's get_batch_jacobian: one backward of sum(logits) with all-ones cotangent, giving
    d(sum_j sum_k f_k(x_j)) / d x_i per image i, flattened to (N, D) float64. In eval mode this is
    each image's own gradient of its summed logits; in train mode BN couples the images."""
    x = x.detach().clone(memory_format=torch.channels_last).requires_grad_(True)
    logits = model(x)
    logits.backward(torch.ones_like(logits))
    j = x.grad.detach().contiguous().reshape(x.shape[0], -1).to("cpu", torch.float64).numpy()
    if not np.isfinite(j).all():
        raise UserError("the input Jacobian holds NaN or inf (the model's outputs or gradients overflow on these images); "
                        "check that the checkpoint's weights are finite and sane, or use another checkpoint")
    return j


def correlation_eigenvalues(jacobian: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending, numpy eigvalsh) of C = corrcoef(J), C_ab = cov(J_a, J_b) / (std(J_a) std(J_b)) over
    the D entries of rows a, b. Raises UserError when C is undefined: a non-finite J, a row with zero variance, or
    an overflow that leaves C non-finite."""
    j = np.asarray(jacobian, dtype=np.float64)
    if not np.isfinite(j).all():
        raise UserError("the Jacobian holds NaN or inf; its correlation is undefined: check that the checkpoint's "
                        "weights are finite, or use another checkpoint")
    centred = j - j.mean(axis=1, keepdims=True)
    flat = np.flatnonzero(np.abs(centred).max(axis=1) == 0)
    if flat.size:
        raise UserError(f"Jacobian rows {flat[:5].tolist()} have zero variance (the model's output ignores those images); "
                        "the NASWOT correlation is undefined for this checkpoint/batch")
    with np.errstate(all="ignore"):
        c = np.corrcoef(j)
    if not np.isfinite(c).all():
        raise UserError("the Jacobian correlation overflowed to NaN or inf (Jacobian entries up to "
                        f"{np.abs(j).max():.3g}); the checkpoint's weights have blown up: use another checkpoint")
    try:
        return np.linalg.eigvalsh(c)
    except np.linalg.LinAlgError as e:
        raise UserError(f"the eigenvalues of the Jacobian correlation did not converge ({e}); use another "
                        "checkpoint or --seed") from None


def score_from_eigenvalues(v: np.ndarray, k: float = 1e-5) -> float:
    """-sum(log(v + k) + 1/(v + k)) (NASWOT eval_score)."""
    vk = np.asarray(v, dtype=np.float64) + k
    if np.any(vk <= 0):
        raise UserError(f"correlation eigenvalue + k = {vk.min():.3g} is not positive; the Jacobians are degenerate "
                        "(raise --k or check the model)")
    return float(-np.sum(np.log(vk) + 1.0 / vk))


def naswot_v1(model: nn.Module, x: torch.Tensor, k: float = 1e-5) -> float:
    """Score of one batch: score_from_eigenvalues(correlation_eigenvalues(batch_jacobian(model, x)))."""
    return score_from_eigenvalues(correlation_eigenvalues(batch_jacobian(model, x)), k)


def relu_kernel(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """K = sum over nn.ReLU modules of c c^T + (1 - c)(1 - c)^T, c = binary activation codes (N, units)."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus or any(m.inplace for m in relus):
        raise UserError("--score naswot-v2 needs a model built from nn.ReLU modules that are not in-place")
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(_m, _inp, out):
        c = (out.detach().reshape(n, -1) > 0).to(torch.float64).cpu()
        kernel.add_(c @ c.T + (1 - c) @ (1 - c).T)

    handles = [m.register_forward_hook(hook) for m in relus]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return kernel.numpy()


def naswot_v2(model: nn.Module, x: torch.Tensor) -> float:
    """log|det K| of relu_kernel (ICML NASWOT)."""
    sign, logdet = np.linalg.slogdet(relu_kernel(model, x))
    if sign <= 0:
        raise UserError("the ReLU-code kernel is singular for this batch (duplicate codes); use another --seed")
    return float(logdet)


def score_batches(model: nn.Module, batches: Sequence[torch.Tensor], score: str = "naswot", bn_mode: str = "train",
                  k: float = 1e-5) -> list[float]:
    """The score of each batch (on the batch's device) on one ``scoring_copy`` of ``model``: naswot_v1 with
    regulariser ``k``, or naswot_v2 for ``score="naswot-v2"``; TF32 off for the duration."""
    if score not in ("naswot", "naswot-v2"):
        raise UserError(f"score {score!r}: use naswot (Table 6) or naswot-v2")
    if bn_mode not in ("train", "eval"):
        raise UserError(f"bn_mode {bn_mode!r}: use train (NASWOT's harness) or eval")
    with ieee_fp32():
        m = scoring_copy(model, bn_mode).to(batches[0].device)
        return [naswot_v1(m, x, k) if score == "naswot" else naswot_v2(m, x) for x in batches]


def naswot(model: nn.Module, images: torch.Tensor, *, bn_mode: str = "train", k: float = 1e-5,
           score: str = "naswot") -> float:
    """The NASWOT score of ``model`` on the batch ``images`` (N >= 2 inputs, normalized as the model takes them),
    on a copy in ``bn_mode`` (the model is unchanged): ``score_batches`` of one batch."""
    if not torch.is_tensor(images) or images.dim() < 2 or images.shape[0] < 2:
        raise UserError("naswot needs a tensor of at least 2 inputs (N, ...): a correlation needs two rows")
    return score_batches(model, [images], score, bn_mode, k)[0]


make_callable(__name__, "naswot")
