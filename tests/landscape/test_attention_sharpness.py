"""Sharpness on attention models: the fused scaled-dot-product-attention kernels have no
forward-mode derivative, so the Hessian-vector products run on the math kernel; a layer that still has none is
one UserError line, and at the CLI exit 2 with the surface already written kept."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import landscape
from training.errors import UserError


class TinyViT(nn.Module):
    """Patch embedding, one pre-norm self-attention block through F.scaled_dot_product_attention (as timm's ViTs),
    mean pooling, a linear head."""

    def __init__(self, dim: int = 8, heads: int = 2, classes: int = 5):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)  # (N, tokens, dim)
        n, s, d = t.shape
        q, k, v = self.qkv(self.norm(t)).reshape(n, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, s, d)
        return self.head((t + self.proj(a)).mean(1))


def encoder_classifier() -> nn.Module:
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
    return nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.Flatten(2), Transpose(), nn.TransformerEncoder(layer, 1),
                         Mean(), nn.Linear(8, 5))


class Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


class Mean(nn.Module):
    def forward(self, x):
        return x.mean(1)


SETTINGS = dict(max_iters=40, sketch=0, min_samples=6, max_samples=6, rel_se=1.0)  # few probes: fast; the
# trace is then checked against 4 of its standard errors


def data(n: int = 12):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 5  # 5 classes


@pytest.mark.parametrize("build", [TinyViT, encoder_classifier])
def test_sharpness_of_attention_models(build):
    torch.manual_seed(0)
    model = build()
    x, y = data()
    rep = landscape.sharpness(model, (x, y), device="cpu", **SETTINGS)
    # the exact Hessian of this small model (torch.func.hessian on the flat parameters) as the reference
    from torch.func import functional_call, hessian
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()

    def loss(theta):
        parts = torch.split(theta, [s.numel() for s in shapes])
        params = {k: p.reshape(s) for k, p, s in zip(names, parts, shapes)}
        return F.cross_entropy(functional_call(model.double().eval(), params, (x.double(),)), y)

    with sdpa_kernel(SDPBackend.MATH):
        h = hessian(loss)(flat)
    eig = torch.linalg.eigvalsh(h)
    assert rep["lambda_max_converged"] and rep["lambda_max"] == pytest.approx(eig[-1].item(), rel=1e-3)
    assert rep["hessian_trace"] == pytest.approx(h.trace().item(), abs=4 * rep["hessian_trace_se"] + 1e-6)


class NoForwardAD(torch.autograd.Function):
    @staticmethod
    def forward(x):
        return x * 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g * 2


class Opaque(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, classes)

    def forward(self, x):
        return NoForwardAD.apply(self.fc(x.flatten(1)))


def test_a_layer_without_forward_derivatives_is_one_line():
    with pytest.raises(UserError) as e:
        landscape.sharpness(Opaque(), data(), device="cpu", **SETTINGS)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("Hessian-vector products (forward-over-reverse torch.func) fail")


def test_cli_keeps_the_surface_and_exits_2(tmp_path, capsys, monkeypatch):
    import sys
    import types

    from landscape.plot import main
    from training.cli.common import run_cli

    module = types.ModuleType("opaque_models")
    module.build = Opaque
    monkeypatch.setitem(sys.modules, "opaque_models", module)
    out = tmp_path / "s.npz"
    rc = run_cli(main, ["--model", "opaque_models:build", "--out", str(out), "--steps", "2", "--max-images", "8",
                        "--sharpness", "--quiet", "--device", "cpu", "--resize", "8"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "Hessian-vector products" in err, err
    assert out.exists() and not (tmp_path / "s_sharpness.json").exists()
