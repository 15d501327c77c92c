"""Directions, engine, folding and store against independent computations."""
import numpy as np
import pytest
import torch

from landscape.compute import compute_surface
from landscape.config import GridSpec
from landscape.directions import filter_normalize, random_directions
from landscape.engine import SurfaceEngine
from landscape.folding import conv_bn_pairs
from landscape.record import load_surface, save_surface

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
    # Li's net_plotter with ignore='': d = w for every 1-D tensor; the other tensors' draws are unchanged.
    with_bn = random_directions(model, 1, seed=123, include_biasbn=True)[0]
    for name, w in model.named_parameters():
        if w.dim() == 1:
            assert torch.equal(with_bn[name], w.detach()), name
        else:
            assert torch.equal(with_bn[name], dx[name]), name
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
    # A run killed midway leaves points marked not computed.
    partial = load_surface(store)
    partial.loss[2:, :] = np.nan
    partial.acc[2:, :] = np.nan
    partial.computed[2:, :] = False
    save_surface(partial, store)
    calls = []
    real_point = SurfaceEngine._point_sums  # the per-point evaluation of SurfaceEngine.points
    monkeypatch.setattr(SurfaceEngine, "_point_sums", lambda self, c: calls.append(tuple(c)) or real_point(self, c))
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
        compute_surface(
            tiny_checkpoint, GridSpec(xsteps=3, ysteps=3, max_images=32, dir_seed=1), store, CPU, quiet=True
        )


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


def test_store_without_mask_treats_non_nan_as_computed(tmp_path):
    """Stores written before the computed-mask existed: NaN = not computed, anything else = computed."""
    import json

    loss = np.array([[1.0, np.nan], [np.inf, 2.0]])
    np.savez(tmp_path / "old.npz", xcoordinates=np.array([0.0, 1.0]), ycoordinates=np.array([0.0, 1.0]), loss=loss,
             acc=loss.copy(), meta_json=np.array(json.dumps({"kind": "random"})))
    s = load_surface(tmp_path / "old.npz")
    np.testing.assert_array_equal(s.computed, [[True, False], [True, True]])
    assert not s.done


def test_non_finite_points_are_done_and_never_recomputed(tiny_checkpoint, tmp_path, monkeypatch):
    """At |x| = 1e30 the weights overflow and the loss is NaN/inf: those points are computed, not missing."""
    spec = GridSpec(xmin=-1e30, xmax=1e30, xsteps=3, ymin=0.0, ymax=0.5, ysteps=2, max_images=32)
    store = tmp_path / "s.npz"
    first = compute_surface(tiny_checkpoint, spec, store, CPU, quiet=True)
    assert first.done and not np.isfinite(first.loss[[0, 2], :]).any() and np.isfinite(first.loss[1, :]).all()
    assert load_surface(store).done
    calls = []
    monkeypatch.setattr(SurfaceEngine, "_point_sums", lambda self, c: calls.append(tuple(c)) or torch.zeros(2, 1))
    again = compute_surface(tiny_checkpoint, spec, store, CPU, quiet=True)
    assert calls == [] and again.done
    np.testing.assert_array_equal(again.loss, first.loss)


def test_unfolded_surface_equals_folded_everywhere(model_and_data):
    """--no-fold-bn on the CPU once drifted point to point (the origin shared the live model's storage)."""
    model, x, y = model_and_data
    x, y = x[:64], y[:64]
    dirs = random_directions(model, 2, seed=7)
    folded = SurfaceEngine(model, dirs, x, y, CPU, fold_bn=True)
    unfolded = SurfaceEngine(model, dirs, x, y, CPU, fold_bn=False)
    centre = unfolded.point((0.0, 0.0))
    for a in np.linspace(-1.0, 0.5, 4):
        for b in np.linspace(-0.2, 0.6, 3):
            lf, af = folded.point((a, b))
            lu, au = unfolded.point((a, b))
            assert lu == pytest.approx(lf, rel=1e-5, abs=1e-6) and au == af, (a, b)
    assert unfolded.point((0.0, 0.0)) == centre


def test_folded_weights_equal_formula_with_eps():
    """W' = W * gamma / sqrt(var + eps), b' = (b - mu) * gamma / sqrt(var + eps) + beta, with running variances
    of 1e-6 where dropping eps (1e-5) would change s by a factor of about 3.3."""
    from landscape.folding import FoldedNetwork
    from training.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("resnet8", num_classes=10, width=4).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.fill_(1e-6)
                m.running_mean.uniform_(-0.5, 0.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    net = FoldedNetwork(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    net.load(state)
    pairs = conv_bn_pairs(model)
    assert pairs
    for conv, bn in pairs:
        w = state[f"{conv}.weight"].double()
        gamma, beta = state[f"{bn}.weight"].double(), state[f"{bn}.bias"].double()
        mu, var = state[f"{bn}.running_mean"].double(), state[f"{bn}.running_var"].double()
        s = gamma / torch.sqrt(var + 1e-5)
        want_w, want_b = w * s.view(-1, 1, 1, 1), (0.0 - mu) * s + beta
        got_w, got_b = net.params[f"{conv}.weight"].double(), net.params[f"{conv}.bias"].double()
        torch.testing.assert_close(got_w, want_w, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_b, want_b, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(got_w, w * (gamma / torch.sqrt(var)).view(-1, 1, 1, 1), rtol=0.1)
    x = torch.randn(8, 3, 32, 32)
    torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-4)


# Normalization constants typed here, independently of training.data (CIFAR-10 mean/std; rethinking's std).
MEAN = (0.4914, 0.4822, 0.4465)
STD = {"cifar": (0.2470, 0.2435, 0.2616), "rethinking": (0.2023, 0.1994, 0.2010)}


@pytest.mark.parametrize("normalization", ["cifar", "rethinking"])
def test_cli_nonsquare_surface_equals_naive_evaluation(tiny_checkpoint, tmp_path, normalization):
    """Every loss[i, j] of a 4 x 3 surface on asymmetric ranges, through the CLI, equals a naive evaluation at
    (x_i, y_j) on the split normalized as the checkpoint was trained (its config's normalization preset)."""
    from landscape.plot import main
    from training.data.datasets import load_split
    from training.store.checkpoint import load_model

    ckpt_path = tmp_path / "c.pt"
    ck = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    ck["config"]["normalization"] = normalization
    torch.save(ck, ckpt_path)
    out = tmp_path / "s.npz"
    assert main([str(ckpt_path), "--out", str(out), "--steps", "4", "3", "--xrange", "-1", "0.5", "--yrange", "-0.3",
                 "0.6", "--max-images", "96", "--device", "cpu", "--quiet"]) == 0
    s = load_surface(out)
    assert s.loss.shape == (4, 3)
    model, _ = load_model(ckpt_path)
    raw = load_split("cifar10", "train", None, 96)
    x = (raw.images.float() / 255.0 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD[normalization]).view(
        1, 3, 1, 1
    )
    xs, ys = np.linspace(-1, 0.5, 4), np.linspace(-0.3, 0.6, 3)
    for i in range(4):
        for j in range(3):
            ref_loss, ref_acc = naive_loss(model, s.directions, (xs[i], ys[j]), x, raw.labels)
            assert s.loss[i, j] == pytest.approx(ref_loss, rel=1e-5), (i, j)
            assert s.acc[i, j] == pytest.approx(ref_acc, abs=1e-3)
