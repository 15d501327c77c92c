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
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from training.errors import UserError
from training.external.data import as_tensors
from training.external.model_output import check_model_inputs
from training.runtime.backends import ieee_fp32


def scoring_copy(model: nn.Module, bn_mode: str) -> nn.Module:
    """A copy of the model with frozen weights, in eval mode except, for ``bn_mode="train"``, its normalization
    layers with running statistics (BatchNorm, InstanceNorm with track_running_stats), which then use the batch's
    statistics as in NASWOT's harness. Dropout and every other layer stay in eval mode, so the score is the same
    on every call. Train-mode BN updates the copy's running statistics, never the model's."""
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)  # same math, faster convolutions
    m.eval()
    if bn_mode == "train":
        for layer in m.modules():
            if isinstance(layer, _NormBase):
                layer.train()
    m.requires_grad_(False)  # only the input gradient is needed; skips the weight-gradient convolutions
    return m


def batch_jacobian(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """NASWOT's get_batch_jacobian: one backward of sum(logits) with all-ones cotangent, giving
    d(sum_j sum_k f_k(x_j)) / d x_i per image i, flattened to (N, D) float64. In eval mode this is
    each image's own gradient of its summed logits; in train mode BN couples the images."""
    layout = torch.channels_last if x.dim() == 4 else torch.preserve_format  # channels_last needs images (N, C, H, W)
    x = x.detach().clone(memory_format=layout).requires_grad_(True)
    logits = model(x)
    logits.backward(torch.ones_like(logits))
    j = x.grad.detach().contiguous().reshape(x.shape[0], -1).to("cpu", torch.float64).numpy()
    if not np.isfinite(j).all():
        raise UserError("the input Jacobian holds NaN or inf (the model's outputs or gradients overflow on these "
                        "images); "
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
        raise UserError(f"Jacobian rows {flat[:5].tolist()} have zero variance (the model's output ignores those "
                        "images); "
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


def scoring_inputs(images: Any, max_images: int | None = None) -> torch.Tensor:
    """The inputs of ``images``: a tensor (N, ...) as it is (its first ``max_images``), else the images of an
    (images, labels) pair, a DataLoader or a dataset (training.external.data.as_tensors)."""
    return images[:max_images] if torch.is_tensor(images) else as_tensors(images, max_images)[0]


def naswot(model: nn.Module, images: Any, *, bn_mode: str = "train", k: float = 1e-5, score: str = "naswot",
           max_images: int | None = None, output_key: str = "logits") -> float:
    """The NASWOT score of ``model`` on one batch (module docstring), on a copy (the model is unchanged).

    images: a tensor (N, ...) of N >= 2 inputs normalized as the model takes them, or what landscape.surface
    takes (an (images, labels) pair, a DataLoader, a dataset; its first ``max_images``, a dataset's spread evenly
    over it). bn_mode "train": normalization layers use the batch's statistics (NASWOT's harness), everything
    else (Dropout included) is in eval mode; "eval": every layer in eval mode, exact per-image gradients.
    output_key: the logits' key when the model returns a mapping. Bad input raises UserError (a ValueError)."""
    x = scoring_inputs(images, max_images)
    model = check_model_inputs(model, x, output_key=output_key)
    return score_batches(model, [x], score, bn_mode, k)[0]
