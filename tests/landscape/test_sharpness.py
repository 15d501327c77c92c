"""Sharpness numbers against a dense Hessian of a tiny real network, and surface flatness on hand-made grids."""
import copy
import importlib
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape.hessian import PROBE_BATCH, HessianOperator, hessian_trace, top_eigenvalue
from landscape.record import Surface
from landscape.sharpness import flatness, sharpness_report
from training.data.datasets import checkpoint_split
from training.store.checkpoint import load_model

IMAGES = 16


@pytest.fixture(scope="module")
def tiny_w2(tmp_path_factory):
    """A real ResNet-8 of width 2 (1,356 parameters, few enough for a dense Hessian) trained for 2 epochs on
    256 CIFAR-10 images, with 16 of its training images, normalized as it was trained."""
    from training.train import main

    out = tmp_path_factory.mktemp("w2") / "scratch-s0"
    assert main(["--method", "scratch", "--model", "resnet8", "--width", "2", "--epochs", "2", "--lr-milestones", "1",
                 "--max-train-images", "256", "--out-dir", str(out), "--device", "cpu", "--quiet",
                 "--batch-size", "64"]) == 0
    model, ck = load_model(out / "ckpt_e002.pt")
    data = checkpoint_split(ck["config"], "train", IMAGES)
    return model.eval(), data.normalized(), data.labels


def dense_hessian(model, x, y) -> torch.Tensor:
    """The full Hessian of the mean cross-entropy, row by row by double backpropagation through a float64 copy
    of the network (an independent route: the library uses forward-over-reverse products and never forms H)."""
    m = copy.deepcopy(model).double().eval()
    params = list(m.parameters())
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(F.cross_entropy(m(x.double()), y), params,
                                                                create_graph=True)])
    rows = [torch.cat([t.reshape(-1) for t in torch.autograd.grad(g[i], params, retain_graph=True)])
            for i in range(g.numel())]
    return torch.stack(rows)


@pytest.fixture(scope="module")
def dense(tiny_w2):
    model, x, y = tiny_w2
    h = dense_hessian(model, x, y)
    assert h.shape[0] < 3000 and torch.allclose(h, h.T, atol=1e-8)
    return torch.linalg.eigvalsh(h), float(torch.trace(h))


def test_report_matches_dense_hessian(tiny_w2, dense):
    model, x, y = tiny_w2
    eigs, trace = dense
    rep = sharpness_report(model, x, y, max_iters=100, max_samples=3000)
    assert rep["images"] == IMAGES
    with torch.no_grad():
        assert rep["centre_loss"] == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)
    assert rep["lambda_max"] == pytest.approx(float(eigs[-1]), rel=1e-3)
    assert rep["lambda_max_converged"] and 1 < rep["lambda_max_iterations"] < 100
    assert rep["trace_converged"] and 10 <= rep["hutchinson_samples"] < 3000
    assert 0 < rep["hessian_trace_se"] <= 0.02 * abs(rep["hessian_trace"])
    assert abs(rep["hessian_trace"] - trace) <= 3 * rep["hessian_trace_se"]
    assert rep["hessian_trace_products"] == 2 * rep["hutchpp_sketch"] + rep["hutchinson_samples"]


def _op(a: torch.Tensor):
    return lambda rows: rows @ a


def _symmetric(eigenvalues, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


def test_hessian_operator_of_a_known_quadratic_over_several_tensors():
    a = _symmetric([4.0, -2.0, 1.0, 0.5, 3.0, 0.0, 2.5, -1.0, 0.25, 1.5])
    params = {"w": torch.randn(2, 3, dtype=torch.float64), "b": torch.randn(4, dtype=torch.float64)}

    def loss(p):
        theta = torch.cat([p["w"].reshape(-1), p["b"]])
        return 0.5 * theta @ a @ theta

    v = torch.randn(3, 10, dtype=torch.float64)
    torch.testing.assert_close(HessianOperator(loss, params)(v), v @ a)


def test_lanczos_gives_algebraic_largest_not_largest_magnitude():
    eigs = [5.0, 2.0, 1.0, 0.5, 0.1, -0.3, -8.0] + [0.01 * i for i in range(30)]
    a = _symmetric(eigs)
    r = top_eigenvalue(_op(a), a.shape[0], max_iters=60, tol=1e-8)
    assert r.converged and r.iterations < 60
    assert r.value == pytest.approx(5.0, rel=1e-8)  # power iteration would return -8
    capped = top_eigenvalue(_op(a), a.shape[0], max_iters=2, tol=1e-12)
    assert not capped.converged and capped.iterations == 2


def test_hutchinson_stops_at_the_standard_error_and_hutchpp_is_exact_on_low_rank():
    gen = torch.Generator().manual_seed(1)
    a = _symmetric(list(torch.rand(200, generator=gen, dtype=torch.float64).tolist()), seed=2)
    exact = float(torch.trace(a))
    r = hessian_trace(_op(a), 200, sketch=0, rel_se=0.02, max_samples=5000)
    assert r.converged and r.samples >= 10 and r.products == r.samples
    assert r.se <= 0.02 * abs(r.value) and abs(r.value - exact) <= 3 * r.se
    capped = hessian_trace(_op(a), 200, sketch=0, rel_se=1e-6, max_samples=12)
    assert not capped.converged and capped.samples == 12
    # Rank 5: a sketch of 5 spans the range, the deflated remainder is zero, the trace exact.
    low = _symmetric([3.0, -1.0, 2.0, 0.5, 7.0] + [0.0] * 195, seed=3)
    r = hessian_trace(_op(low), 200, sketch=5, min_samples=10)
    assert r.value == pytest.approx(11.5, rel=1e-10) and r.se < 1e-10
    assert 10 <= r.samples < 10 + PROBE_BATCH and r.products == 10 + r.samples  # probes come PROBE_BATCH at a time


def _surface(loss, x, y=(), meta=None) -> Surface:
    loss = np.asarray(loss, dtype=float)
    return Surface(np.asarray(x, float), np.asarray(y, float), loss, np.zeros_like(loss), meta or {})


def test_basin_counts_only_the_region_joined_to_the_centre():
    loss = np.full((7, 7), 5.0)
    loss[2:5, 2:5] = 1.0  # centre basin: 9 points around the centre (3, 3)
    loss[3, 3] = 0.9
    loss[0:2, 5:7] = 0.0  # a deeper basin in a corner, not joined to the centre
    loss[5, 5] = 1.0  # touches the centre basin only at a corner: not 4-connected
    loss[3, 5] = 1.05  # joined by an edge
    s = _surface(loss, np.linspace(-1, 1, 7), np.linspace(-1, 1, 7), {"data": "cifar10 train (64 images)"})
    f = flatness(s, cells=(1,), deltas=(0.05, 0.12, 0.2, 5.0))
    assert f["surface_centre_loss"] == 0.9 and f["surface_images"] == 64
    assert f["basin_area_below_centre_plus_0.05"] == 1
    assert f["basin_area_below_centre_plus_0.12"] == 9
    assert f["basin_area_below_centre_plus_0.2"] == 10
    assert f["basin_fraction_below_centre_plus_0.2"] == pytest.approx(10 / 49)
    assert f["basin_area_below_centre_plus_5"] == 49
    assert f["rise_within_1_cells"] == pytest.approx(0.1)


def test_rises_in_grid_cells_on_a_nonsquare_grid():
    x = np.linspace(-1, 1, 9)  # cell 0.25
    y = np.linspace(-3, 1, 5)  # cell 1.0; centre at y = 0 (index 3)
    i, j = np.meshgrid(np.arange(9), np.arange(5), indexing="ij")
    loss = 10.0 * np.abs(i - 4) + np.abs(j - 3) + 0.5
    f = flatness(_surface(loss, x, y), cells=(1, 2, 5), deltas=(10.0,))
    assert f["grid_cell_x"] == pytest.approx(0.25) and f["grid_cell_y"] == pytest.approx(1.0)
    assert f["rise_within_1_cells"] == pytest.approx(11.0)
    assert f["rise_within_2_cells"] == pytest.approx(22.0)
    assert f["rise_within_5_cells"] == pytest.approx(43.0)  # the whole grid: |i - 4| <= 4, |j - 3| <= 3
    assert f["basin_area_below_centre_plus_10"] == 5 + 2  # 10 |i - 4| + |j - 3| <= 10: row i = 4, and (3, 3), (5, 3)


def test_one_dimensional_intervals_and_non_finite_points():
    loss = [0.0, 3.0, 1.2, 1.0, 1.1, np.inf, 1.0, 1.0]
    x = np.linspace(-0.6, 0.8, 8)  # centre: x = 0 at index 3
    f = flatness(_surface(loss, x), cells=(1, 2), deltas=(0.25, 5.0))
    assert f["surface_centre_loss"] == 1.0 and f["grid_cell_y"] is None
    assert f["rise_within_1_cells"] == pytest.approx(0.2) and math.isinf(f["rise_within_2_cells"])
    assert f["basin_area_below_centre_plus_0.25"] == 3  # indices 2, 3, 4: the inf at 5 ends the run
    assert f["basin_area_below_centre_plus_5"] == 5
    assert f["basin_fraction_below_centre_plus_5"] == pytest.approx(5 / 8)


@pytest.mark.parametrize("value", ["0", "-3", "nan", "1.5", "inf"])
def test_sharpness_images_must_be_a_positive_integer(value, tiny_checkpoint, tmp_path, capsys):
    from landscape.plot import main

    with pytest.raises(SystemExit) as e:
        main([str(tiny_checkpoint), "--out", str(tmp_path / "s.npz"), "--sharpness", "--sharpness-images", value])
    assert e.value.code == 2 and "--sharpness-images" in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize("surface_images, flag, used", [(24, 64, 24), (24, 8, 8)])
def test_cli_names_the_images_behind_each_number(surface_images, flag, used, tiny_checkpoint, tmp_path, capsys,
                                                 monkeypatch):
    sharpness = importlib.import_module("landscape.sharpness")  # the module (landscape.sharpness is the function)
    from landscape.plot import main

    full = sharpness.sharpness_report  # a looser standard error keeps this wiring test fast
    monkeypatch.setattr(sharpness, "sharpness_report", lambda *a, **k: full(*a, **k, rel_se=0.25, max_samples=200))
    out = tmp_path / "s.npz"
    assert main([str(tiny_checkpoint), "--out", str(out), "--steps", "3", "--max-images", str(surface_images),
                 "--sharpness", "--sharpness-images", str(flag), "--quiet"]) == 0
    rep = json.loads((tmp_path / "s_sharpness.json").read_text())
    assert rep["images"] == used and rep["surface_images"] == surface_images
    assert rep["same_images"] == (used == surface_images) and f"first {used} images" in rep["hessian_data"]
    model, ck = load_model(tiny_checkpoint)
    data = checkpoint_split(ck["config"], "train", used)
    with torch.no_grad():
        expected = F.cross_entropy(model.eval()(data.normalized()), data.labels).item()
    assert rep["centre_loss"] == pytest.approx(expected, rel=1e-5)
    if used == surface_images:
        assert rep["centre_loss"] == pytest.approx(rep["surface_centre_loss"], rel=1e-5)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith(f"sharpness on {used} images") and f"surface on {surface_images} images" in line


def test_report_refuses_nan_weights_and_empty_images():
    from training.errors import UserError

    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(UserError, match="weights"):
        with torch.no_grad():
            model.weight[0, 0] = float("nan")
        sharpness_report(model, x, y)
    with pytest.raises(UserError, match="image count"):
        sharpness_report(torch.nn.Linear(4, 3), x[:0], y[:0])


def test_the_hessian_module_holds_the_estimators_alone():
    """landscape.hessian (operator, Lanczos, Hutch++) knows no surface, store or checkpoint: only training's errors."""
    import ast

    import landscape.hessian as hessian

    tree = ast.parse(open(hessian.__file__).read())
    ours = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and n.module.split(".")[0] in ("training", "landscape", "diversity", "figures")}
    assert ours == {"training.errors"}
