"""Directions, engine and store against independent computations (DESIGN §6.1-§6.4)."""
import numpy as np
import pytest
import torch

from landscape.compute import compute_surface
from landscape.config import GridSpec
from landscape.directions import filter_normalize, random_directions
from landscape.engine import SurfaceEngine
from landscape.folding import conv_bn_pairs
from landscape.sharpness import hutchinson_trace, top_eigenvalue
from landscape.store import load_surface, save_surface

from .conftest import naive_loss

CPU = torch.device("cpu")


def test_filter_norms_equal_weight_norms_and_biasbn_zero(model_and_data):
    model, _, _ = model_and_data
    dx, dy = random_directions(model, 2, seed=123)
    for name, w in model.named_parameters():
        for d in (dx, dy):
            if w.dim() > 1:
                dn = d[name].reshape(w.shape[0], -1).norm(dim=1)
                wn = w.detach().reshape(w.shape[0], -1).norm(dim=1)
                assert torch.allclose(dn, wn, rtol=1e-5), name
            else:
                assert torch.count_nonzero(d[name]) == 0, name
    assert not torch.equal(dx["conv1.weight"], dy["conv1.weight"])
    with_bn = random_directions(model, 1, seed=123, include_biasbn=True)[0]
    assert torch.allclose(with_bn["bn1.weight"].norm(), model.bn1.weight.detach().norm(), rtol=1e-5)
    assert torch.equal(random_directions(model, 2, seed=123)[1]["fc.weight"], dy["fc.weight"])  # seeded


def test_filter_normalize_formula():
    d, w = torch.randn(3, 2, 2), torch.randn(3, 2, 2)
    out = filter_normalize(d, w)
    for f in range(3):
        assert torch.allclose(out[f], d[f] * w[f].norm() / (d[f].norm() + 1e-10))


def test_centre_equals_checkpoint_loss(model_and_data):
    model, x, y = model_and_data
    with torch.no_grad():
        logits = model.eval()(x)
    expected = torch.nn.functional.cross_entropy(logits, y).item()
    for fold in (True, False):
        e = SurfaceEngine(model, random_directions(model, 2), x, y, CPU, batch_size=100, fold_bn=fold)
        loss, acc = e.point((0.0, 0.0))
        assert loss == pytest.approx(expected, rel=1e-5)
        assert acc == pytest.approx(100.0 * (logits.argmax(1) == y).float().mean().item())


def test_off_centre_equals_naive_and_model_unchanged(model_and_data):
    model, x, y = model_and_data
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dirs = random_directions(model, 2)
    e = SurfaceEngine(model, dirs, x, y, CPU, batch_size=64)
    for coords in ((0.4, -0.3), (-1.0, 1.0), (0.25, 0.0)):
        loss, acc = e.point(coords)
        ref_loss, ref_acc = naive_loss(model, dirs, coords, x, y)
        assert loss == pytest.approx(ref_loss, rel=1e-4)
        assert acc == pytest.approx(ref_acc, abs=100.0 / len(y) + 1e-9)
    # Absolute, not accumulated: returning to a point gives the same value.
    assert e.point((0.4, -0.3)) == e.point((0.4, -0.3))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bn_folding_pairs_cover_every_bn(model_and_data):
    model, _, _ = model_and_data
    bns = {n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert {bn for _, bn in conv_bn_pairs(model)} == bns


def test_resume_computes_only_missing_points(tiny_checkpoint, tmp_path, monkeypatch):
    spec = GridSpec(xsteps=4, ysteps=3, max_images=64)
    store = tmp_path / "s.npz"
    full = compute_surface(tiny_checkpoint, spec, store, CPU, quiet=True)
    assert full.done and full.loss.shape == (4, 3)
    # A run killed midway leaves NaN where points were not computed yet.
    partial = load_surface(store)
    partial.loss[2:, :] = np.nan
    partial.acc[2:, :] = np.nan
    save_surface(partial, store)
    calls = []
    real_point = SurfaceEngine.point
    monkeypatch.setattr(SurfaceEngine, "point", lambda self, c: calls.append(tuple(c)) or real_point(self, c))
    resumed = compute_surface(tiny_checkpoint, spec, store, CPU, quiet=True)
    assert len(calls) == 6 and all(c[0] >= full.xcoords[2] for c in calls)
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.acc, full.acc)
    calls.clear()
    compute_surface(tiny_checkpoint, spec, store, CPU, quiet=True)
    assert calls == []


def test_mismatched_store_refused(tiny_checkpoint, tmp_path):
    from training.errors import UserError

    store = tmp_path / "s.npz"
    compute_surface(tiny_checkpoint, GridSpec(xsteps=3, ysteps=3, max_images=32), store, CPU, quiet=True)
    with pytest.raises(UserError, match="grid"):
        compute_surface(tiny_checkpoint, GridSpec(xsteps=5, ysteps=3, max_images=32), store, CPU, quiet=True)
    with pytest.raises(UserError, match="directions_sha"):
        compute_surface(tiny_checkpoint, GridSpec(xsteps=3, ysteps=3, max_images=32, dir_seed=1), store, CPU, quiet=True)


def test_top_eigenvalue_and_trace_of_known_quadratic():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    eig = torch.tensor([5.0, 2.0, 1.0, 0.5, -0.3, 0.1], dtype=torch.float64)
    a = q @ torch.diag(eig) @ q.T
    params = {"w": torch.randn(2, 3, dtype=torch.float64)}
    loss = lambda p: 0.5 * p["w"].reshape(-1) @ a @ p["w"].reshape(-1)
    assert top_eigenvalue(loss, params, iters=200, tol=1e-12) == pytest.approx(5.0, rel=1e-6)
    assert hutchinson_trace(loss, params, samples=400) == pytest.approx(float(eig.sum()), rel=0.15)


def test_same_loss_as_loss_landscapes_library(model_and_data):
    """The PyPI loss-landscapes library evaluates the same point to the same loss."""
    import copy

    from loss_landscapes import point
    from loss_landscapes.metrics import Loss

    model, x, y = model_and_data
    dirs = random_directions(model, 2)
    coords = (0.3, -0.6)
    moved = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.add_(coords[0] * dirs[0][name] + coords[1] * dirs[1][name])
    theirs = point(moved, Loss(torch.nn.functional.cross_entropy, x, y))
    ours, _ = SurfaceEngine(model, dirs, x, y, CPU).point(coords)
    assert ours == pytest.approx(theirs, rel=1e-4)
