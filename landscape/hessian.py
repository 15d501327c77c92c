"""The Hessian of a model's loss, never formed, and the two estimates read from it.

H is the Hessian, over every trainable parameter (n of them), of the mean cross-entropy
L(theta) = (1/N) sum_i CE(f(x_i; theta), y_i) over the N given images at the checkpoint theta*, in eval mode
(BatchNorm uses its stored statistics, which stay fixed). H is never formed: each Hessian-vector product
Hv = d/de grad L(theta* + e v) is one torch.func jvp over grad, several probes at a time through vmap.

- lambda_max: the algebraic largest eigenvalue of H by Lanczos with full reorthogonalization, started from a
  seeded Gaussian vector. After m products the tridiagonal T_m (alphas on the diagonal, betas beside it) has
  top eigenpair (theta, u); the Ritz vector's residual is ||H y - theta y|| = beta_m |u_m|, and the run has
  converged when beta_m |u_m| <= tol |theta| (some eigenvalue of H then lies within tol |theta| of theta).
  Power iteration would give the largest |eigenvalue| instead, which at a saddle can be a negative one.
- hessian_trace: adaptive Hutch++ (Meyer et al. 2021). With S an (n, k) Rademacher sketch and Q an
  orthonormal basis of HS (2k products in all), tr(H) = tr(Q^T H Q) + tr((I - QQ^T) H (I - QQ^T)) holds
  exactly for any Q. The first term is computed; the second is Hutchinson's mean of
  t_j = w_j^T H w_j with w_j = (I - QQ^T) g_j over Rademacher g_j, drawn until its standard error
  se = s / sqrt(m) (s the sample standard deviation of the t_j, ddof 1, m the number of probes) is at most
  rel_se |estimate|, after at least min_samples and at most max_samples probes. With k = 0 this is plain
  Hutchinson. Deflation removes the few large eigenvalues that dominate the probe variance.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from training.errors import UserError

Params = dict[str, torch.Tensor]
PROBE_BATCH = 4  # probes per vmapped Hessian-vector product (fastest on CPU for ResNet-8 w4, 256 images)


def model_loss_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[Callable, Params]:
    """Mean cross-entropy as a function of the parameters (eval mode, buffers fixed), and theta*."""
    model = model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p: Params) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, (p, buffers), (images,)), labels)

    return loss, params


def math_attention():
    """The context every Hessian-vector product runs in: scaled_dot_product_attention on its math kernel, built
    from ordinary operations that have forward-mode derivatives (the fused flash / memory-efficient kernels have
    none, so jvp-over-grad through them fails). The same attention, computed without fusion."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


class HessianOperator:
    """Hessian-vector products on flat vectors: ``op(V)`` maps rows V (B, n) to rows (H V^T)^T, in float64."""

    def __init__(self, loss_fn: Callable[[Params], torch.Tensor], params: Params):
        self.keys = list(params)
        self.shapes = [params[k].shape for k in self.keys]
        self.sizes = [params[k].numel() for k in self.keys]
        self.n = sum(self.sizes)
        self.dtype = next(iter(params.values())).dtype
        self.device = next(iter(params.values())).device
        g = grad(loss_fn)
        self._batched = vmap(lambda v: jvp(g, (params,), (v,))[1])

    def __call__(self, vectors: torch.Tensor) -> torch.Tensor:
        out = []
        for chunk in torch.split(vectors, PROBE_BATCH):
            parts = torch.split(chunk.to(self.dtype), self.sizes, dim=1)
            v = {k: p.reshape((len(chunk), *s)) for k, p, s in zip(self.keys, parts, self.shapes)}
            with warnings.catch_warnings(), math_attention():
                # torch.func.jvp's own jit-scripted decompositions warn on first use
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
                try:
                    hv = self._batched(v)
                except torch.OutOfMemoryError:
                    raise
                except (NotImplementedError, RuntimeError) as e:
                    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                    raise UserError(f"Hessian-vector products (forward-over-reverse torch.func) fail on this model "
                                    f"({type(e).__name__}: {first}); sharpness needs layers with second derivatives "
                                    "in forward mode") from None
            out.append(torch.cat([hv[k].reshape(len(chunk), -1) for k in self.keys], 1).double())
        return torch.cat(out)


@dataclass
class EigResult:
    value: float
    iterations: int  # Hessian-vector products used
    converged: bool


@dataclass
class TraceResult:
    value: float
    se: float  # standard error of the stochastic part
    samples: int  # Hutchinson probes of the deflated remainder
    products: int  # Hessian-vector products in all (2k for the sketch, one per probe)
    converged: bool


def top_eigenvalue(op: Callable[[torch.Tensor], torch.Tensor], n: int, *, max_iters: int = 100,
                   tol: float = 1e-4, seed: int = 0, device: torch.device | str = "cpu") -> EigResult:
    """Algebraic largest eigenvalue of the symmetric operator ``op`` (rows in, rows out) by Lanczos with full
    reorthogonalization; stops when the Ritz residual beta_m |u_m| <= tol |theta| or after max_iters products."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    basis = [q / q.norm()]
    alphas: list[float] = []
    betas: list[float] = []
    theta = math.nan
    for m in range(1, max_iters + 1):
        w = op(basis[-1][None])[0]
        alphas.append(float(basis[-1] @ w))
        qs = torch.stack(basis)
        for _ in range(2):  # twice is enough to keep the basis orthonormal to rounding
            w = w - qs.T @ (qs @ w)
        beta = float(w.norm())
        evals, evecs = np.linalg.eigh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1))
        theta = float(evals[-1])
        if beta * abs(evecs[-1, -1]) <= tol * abs(theta) or beta == 0.0:
            return EigResult(theta, m, True)
        betas.append(beta)
        basis.append(w / beta)
    return EigResult(theta, max_iters, False)


def hessian_trace(op: Callable[[torch.Tensor], torch.Tensor], n: int, *, rel_se: float = 0.02,
                  min_samples: int = 10, max_samples: int = 2000, sketch: int = 40, seed: int = 0,
                  device: torch.device | str = "cpu") -> TraceResult:
    """tr(op) by adaptive Hutch++: exact trace on the span Q of op(S) for a Rademacher sketch S of ``sketch``
    columns, plus Hutchinson on the deflated remainder until se <= rel_se |estimate| (module docstring)."""
    gen = torch.Generator().manual_seed(seed)

    def rademacher(count: int) -> torch.Tensor:
        return (torch.randint(0, 2, (count, n), generator=gen, dtype=torch.float64) * 2 - 1).to(device)

    products = 0
    exact = 0.0
    q = torch.zeros(0, n, dtype=torch.float64, device=device)
    k = min(sketch, n)
    if k:
        q = torch.linalg.qr(op(rademacher(k)).T).Q.T  # rows: an orthonormal basis of span(H S)
        exact = float((q * op(q)).sum())
        products += 2 * k
    samples: list[float] = []
    value, se = exact, math.inf
    while len(samples) < max_samples:
        g = rademacher(min(PROBE_BATCH, max_samples - len(samples)))
        w = g - (g @ q.T) @ q
        samples += (w * op(w)).sum(1).tolist()
        products += len(g)
        value = exact + float(np.mean(samples))
        se = float(np.std(samples, ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 else math.inf
        if len(samples) >= min_samples and se <= rel_se * abs(value):
            return TraceResult(value, se, len(samples), products, True)
    return TraceResult(value, se, len(samples), products, False)
