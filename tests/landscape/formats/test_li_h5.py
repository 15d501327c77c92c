"""Li et al.'s HDF5 files: files built the way his plot_surface.py / net_plotter.py / h5_util.py build them are
read right, and ours read right through his plot_2D.py / h52vtp.py indexing (reconstructed here with h5py and
np.meshgrid). Trajectory PCA against an independent numpy PCA of the centred path."""
import h5py
import numpy as np
import pytest
import torch

from landscape.compute import compute_surface
from landscape.config import GridSpec
from landscape.formats.li_h5 import read_li_h5, write_li_h5
from landscape.plot import main
from landscape.record import Surface, load_surface
from training.cli.common import run_cli
from training.store.checkpoint import load_model

from ..conftest import naive_loss

CPU = torch.device("cpu")


def asymmetric(x, y):
    """A surface whose value at (+1, -1) differs from the one at (-1, +1)."""
    return 5.0 + 3.0 * x + 0.5 * y + 0.1 * x * y


def _li_surface_file(path, x, y):
    """As Li's plot_surface.crunch: losses = -ones((len(x), len(y))), points enumerated by np.meshgrid(x, y)
    (scheduler.get_unplotted_indices) and written through losses.ravel()[ind]."""
    losses = -np.ones((len(x), len(y)))
    accs = -np.ones((len(x), len(y)))
    xm, ym = np.meshgrid(x, y)
    for ind in range(losses.size):
        losses.ravel()[ind] = asymmetric(xm.ravel()[ind], ym.ravel()[ind])
        accs.ravel()[ind] = 50.0 + xm.ravel()[ind]
    with h5py.File(path, "w") as f:
        f["dir_file"] = "model.t7_weights_xignore=biasbn_xnorm=filter.h5"
        f["xcoordinates"] = x
        f["ycoordinates"] = y
        f["train_loss"] = losses
        f["train_acc"] = accs


@pytest.mark.parametrize("nx, ny", [(5, 5), (5, 3)])
def test_reads_a_surface_file_built_as_li_builds_it(tmp_path, nx, ny):
    x, y = np.linspace(-1, 1, nx), np.linspace(-1, 0.5, ny)
    _li_surface_file(tmp_path / "li.h5", x, y)
    s = read_li_h5(tmp_path / "li.h5")
    assert s.loss.shape == (nx, ny) and s.done
    for i in range(nx):
        for j in range(ny):
            assert s.loss[i, j] == pytest.approx(asymmetric(x[i], y[j]))
            assert s.acc[i, j] == pytest.approx(50.0 + x[i])
    assert s.meta["dir_file"].endswith("filter.h5")


def test_li_not_computed_marker_read_as_missing(tmp_path):
    x, y = np.linspace(-1, 1, 3), np.linspace(-1, 1, 3)
    _li_surface_file(tmp_path / "li.h5", x, y)
    with h5py.File(tmp_path / "li.h5", "r+") as f:
        f["train_loss"][0, 1] = -1.0  # row iy = 0, column ix = 1: the point (x[1], y[0])
    s = read_li_h5(tmp_path / "li.h5")
    assert not s.computed[1, 0] and np.isnan(s.loss[1, 0]) and s.computed.sum() == 8


def _synthetic(nx, ny):
    x, y = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
    loss = asymmetric(x[:, None], y[None, :])  # ours: [ix, iy]
    return Surface(x, y, loss, 100 - loss, {"split": "train"}, [])


def test_ours_read_the_way_h52vtp_and_plot_2d_read(tmp_path):
    s = _synthetic(5, 3)
    write_li_h5(s, tmp_path / "ours.h5")
    with h5py.File(tmp_path / "ours.h5", "r") as f:
        # h52vtp.py: meshgrid of the coordinates, then ravel of coordinates and values alike.
        xs, ys = np.meshgrid(f["xcoordinates"][:], f["ycoordinates"][:][:])
        z = f["train_loss"][:].ravel()
        for px, py, pz in zip(xs.ravel(), ys.ravel(), z):
            assert pz == pytest.approx(asymmetric(px, py))
        at = (xs.ravel() == 1.0) & (ys.ravel() == -1.0)
        assert z[at] == pytest.approx(asymmetric(1.0, -1.0)) and asymmetric(1.0, -1.0) != asymmetric(-1.0, 1.0)
        # plot_2D.py: X, Y = np.meshgrid(x, y); contour(X, Y, Z) needs Z of the same shape, Z[iy, ix].
        X, Y = np.meshgrid(np.array(f["xcoordinates"][:]), np.array(f["ycoordinates"][:]))
        Z = np.array(f["train_loss"][:])
        assert Z.shape == X.shape == (3, 5)
        np.testing.assert_allclose(Z, asymmetric(X, Y))
        assert f["dir_file"][()].decode().endswith("ours_directions.h5")
    back = read_li_h5(tmp_path / "ours.h5")
    np.testing.assert_array_equal(back.loss, s.loss)


def test_cli_h5_with_direction_file_as_li_reads_them(tiny_checkpoint, tmp_path):
    out = tmp_path / "surf.h5"
    assert main([str(tiny_checkpoint), "--out", str(out), "--steps", "4", "3", "--xrange", "-1", "0.5",
                 "--yrange", "-0.2", "0.4", "--max-images", "64", "--device", "cpu", "--quiet"]) == 0
    s = load_surface(tmp_path / "surf.npz")
    model, _ = load_model(tiny_checkpoint)
    with h5py.File(out, "r") as f:
        X, Y = np.meshgrid(f["xcoordinates"][:], f["ycoordinates"][:])
        Z = f["train_loss"][:]
        for iy in range(3):
            for ix in range(4):
                assert X[iy, ix] == s.xcoords[ix] and Y[iy, ix] == s.ycoords[iy]
                assert Z[iy, ix] == s.loss[ix, iy]
        dir_file = f["dir_file"][()].decode()
    # net_plotter.load_directions + h5_util.read_list: one entry per model.parameters(), in order.
    with h5py.File(dir_file, "r") as f:
        assert set(f.keys()) == {"xdirection", "ydirection"}
        for group, d in zip(("xdirection", "ydirection"), s.directions):
            entries = [f[group][str(i)] for i in range(len(f[group]))]
            params = list(model.named_parameters())
            assert len(entries) == len(params)
            for e, (name, p) in zip(entries, params):
                assert e.shape == p.shape
                np.testing.assert_array_equal(e[()], d[name].numpy())
                if p.dim() == 1:
                    assert not e[()].any()


def _li_direction_file(path, model, groups=("xdirection", "ydirection"), seed=0, drop_last=False):
    """As net_plotter.setup_direction + h5_util.write_list: per group, datasets '0'..'N-1', one per
    model.parameters() tensor (1-D ones zero, as with ignore='biasbn')."""
    g = torch.Generator().manual_seed(seed)
    lists = []
    with h5py.File(path, "w") as f:
        for name in groups:
            direction = [torch.randn(p.shape, generator=g) * 0.05 if p.dim() > 1 else torch.zeros(p.shape)
                         for p in model.parameters()]
            if drop_last:
                direction = direction[:-1]
            grp = f.create_group(name)
            for i, t in enumerate(direction):
                grp.create_dataset(str(i), data=t.numpy())
            lists.append(direction)
    return lists


def test_directions_from_a_li_direction_file(tiny_checkpoint, tmp_path, model_and_data):
    model, _, _ = model_and_data
    lists = _li_direction_file(tmp_path / "dirs.h5", model)
    out = tmp_path / "s.npz"
    assert main([str(tiny_checkpoint), "--out", str(out), "--directions", str(tmp_path / "dirs.h5"), "--steps", "2",
                 "--xrange", "-0.5", "1", "--max-images", "64", "--device", "cpu", "--quiet"]) == 0
    s = load_surface(out)
    names = [n for n, _ in model.named_parameters()]
    dirs = [dict(zip(names, lst)) for lst in lists]
    for d_ours, d_li in zip(s.directions, dirs):
        for n in names:
            assert torch.equal(d_ours[n], d_li[n]), n
    from training.data.datasets import load_split

    data = load_split("cifar10", "train", None, 64)
    x, y = data.normalized(), data.labels
    for i, a in enumerate(s.xcoords):
        for j, b in enumerate(s.ycoords):
            assert s.loss[i, j] == pytest.approx(naive_loss(model, dirs, (a, b), x, y)[0], rel=1e-5)


@pytest.mark.parametrize("problem, needle", [("count", "holds 22 tensors"), ("shape", "xdirection/0 has shape (5, 3, "
                                                                                      "3, 3)"),
                                             ("no_y", "ydirection")])
def test_li_direction_file_that_does_not_fit(tiny_checkpoint, tmp_path, model_and_data, capsys, problem, needle):
    model, _, _ = model_and_data
    _li_direction_file(tmp_path / "d.h5", model, groups=("xdirection",) if problem == "no_y" else
                       ("xdirection", "ydirection"), drop_last=problem == "count")
    if problem == "shape":  # a conv of 5 filters where this model's first conv has 4
        with h5py.File(tmp_path / "d.h5", "r+") as f:
            del f["xdirection/0"]
            f["xdirection/0"] = np.zeros((5, 3, 3, 3), dtype=np.float32)
    rc = run_cli(main, [str(tiny_checkpoint), "--out", str(tmp_path / "s.npz"), "--directions", str(tmp_path / "d.h5"),
                        "--steps", "2", "--max-images", "16", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.npz").exists()


def test_trajectory_pca_is_centred_and_grid_contains_path(tiny_run_dir, tmp_path):
    ckpt = tiny_run_dir / "ckpt_e003.pt"
    spec = GridSpec(xsteps=3, ysteps=3, max_images=32)
    s = compute_surface(ckpt, spec, tmp_path / "t.npz", CPU, trajectory=tiny_run_dir, fit_trajectory=True, quiet=True)
    # Independent PCA: rows theta_i - theta*, centred over i, numpy SVD (sklearn's PCA does the same).
    model, _ = load_model(ckpt)
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    origin = {n: p.detach().double().numpy() for n, p in model.named_parameters()}
    rows = []
    for path in sorted(tiny_run_dir.glob("ckpt_e*.pt")):
        m, _ = load_model(path)
        w = dict(m.named_parameters())
        rows.append(np.concatenate([(w[n].detach().double().numpy() - origin[n]).ravel() for n in names]))
    rows = np.array(rows)
    centred = rows - rows.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    ratios = sv**2 / (sv**2).sum()
    np.testing.assert_allclose(s.meta["trajectory_explained_variance_ratio"], ratios[:2], rtol=1e-6)
    for k, d in enumerate(s.directions):
        flat = np.concatenate([d[n].double().numpy().ravel() for n in names])
        assert abs(flat @ vt[k]) == pytest.approx(1.0, abs=1e-5)
        for n, p in model.named_parameters():
            if p.dim() == 1:
                assert not d[n].any()
        coords = np.array(s.meta["trajectory_coords"])[:, k]
        np.testing.assert_allclose(np.abs(coords), np.abs(rows @ vt[k]), rtol=1e-4, atol=1e-6)
    # The uncentred SVD (the old behaviour) gives another first direction on this path.
    _, _, vt_raw = np.linalg.svd(rows, full_matrices=False)
    assert abs(vt_raw[0] @ vt[0]) < 0.9999
    coords = np.array(s.meta["trajectory_coords"])
    assert (coords[:, 0] > s.xcoords.min()).all() and (coords[:, 0] < s.xcoords.max()).all()
    assert (coords[:, 1] > s.ycoords.min()).all() and (coords[:, 1] < s.ycoords.max()).all()
    assert s.meta["grid"]["xmin"] == s.xcoords[0] and len(s.meta["trajectory_loss"]) == len(rows)
