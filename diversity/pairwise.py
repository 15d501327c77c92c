"""Function-space diversity between trained models (beyond the paper).

On the same test images, for models a and b:
- disagreement = mean [argmax p_a != argmax p_b];
- symmetric KL = mean over images of (KL(p_a || p_b) + KL(p_b || p_a)) / 2;
- linear CKA of the last feature maps flattened per image (Kornblith et al. 2019):
  CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with column-centred X, Y, computed through the
  N x N Gram matrices.
A method x method cell averages over all pairs of distinct models (one from each method)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UserError


@dataclass
class Outputs:
    log_probs: torch.Tensor  # (N, classes), float64
    features: torch.Tensor  # (N, C*H*W), float64


@torch.inference_mode()
def model_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> Outputs:
    """Eval-mode log-softmax of the logits and flattened last feature maps, float64, on the CPU."""
    model.eval()
    lp, feats = [], []
    for xb in x.split(batch_size):
        f = model.forward_features(xb)
        lp.append(F.log_softmax(model.forward_head(f).double(), dim=1))
        feats.append(f.flatten(1).double())
    out = Outputs(torch.cat(lp).cpu(), torch.cat(feats).cpu())
    if not (torch.isfinite(out.log_probs).all() and torch.isfinite(out.features).all()):
        raise UserError("the model's outputs on the test images hold NaN or inf; check that the checkpoint's weights "
                        "are finite, or use another checkpoint")
    return out


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of (N, Dx) and (N, Dy) features: <Kx, Ky>_F / (||Kx||_F ||Ky||_F), K = Zc Zc^T of the
    column-centred features, which equals ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)."""
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    kx, ky = x @ x.T, y @ y.T
    return float((kx * ky).sum() / (kx.norm() * ky.norm()))


def pair_metrics(a: Outputs, b: Outputs) -> dict[str, float]:
    """disagreement, sym_kl and cka of two models' outputs on the same images (formulas in the module docstring)."""
    pa, pb = a.log_probs.exp(), b.log_probs.exp()
    kl_ab = (pa * (a.log_probs - b.log_probs)).sum(1)
    kl_ba = (pb * (b.log_probs - a.log_probs)).sum(1)
    return {
        "disagreement": float((a.log_probs.argmax(1) != b.log_probs.argmax(1)).double().mean()),
        "sym_kl": float(((kl_ab + kl_ba) / 2).mean()),
        "cka": linear_cka(a.features, b.features),
    }


def method_matrix(outputs: dict[str, list[Outputs]]) -> list[dict]:
    """Rows {method_a, method_b, pairs, disagreement, sym_kl, cka} averaged over distinct model pairs."""
    rows = []
    for ma, mb in itertools.combinations_with_replacement(list(outputs), 2):
        pairs = (itertools.combinations(outputs[ma], 2) if ma == mb
                 else itertools.product(outputs[ma], outputs[mb]))
        ms = [pair_metrics(a, b) for a, b in pairs]
        if not ms:
            continue
        rows.append({"method_a": ma, "method_b": mb, "pairs": len(ms),
                     **{k: sum(m[k] for m in ms) / len(ms) for k in ms[0]}})
    return rows
