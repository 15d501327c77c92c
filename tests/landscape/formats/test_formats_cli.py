"""Output formats read back with plain vtk / h5py, the CLI, torchrun sharding and bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from landscape.formats.li_h5 import read_li_h5
from landscape.plot import main
from landscape.record import load_surface


@pytest.fixture(scope="module")
def nonsquare(tiny_checkpoint, tmp_path_factory):
    """A 5 x 3 surface on an asymmetric range, exported to every format."""
    d = tmp_path_factory.mktemp("fmt")
    common = [str(tiny_checkpoint), "--steps", "5", "3", "--xrange", "-1", "0.5", "--yrange", "-0.2", "0.4",
              "--max-images", "64", "--device", "cpu", "--quiet"]
    for suffix in (".vtk", ".vts", ".vtp", ".h5", ".npz"):
        assert main([*common, "--out", str(d / f"surf{suffix}")]) == 0
    return d


@pytest.mark.parametrize("suffix", [".vtk", ".vts", ".vtp"])
def test_vtk_readback_keeps_topology(nonsquare, suffix, read_vtk):
    s = load_surface(nonsquare / "surf.npz")
    out, pts, arrays, meta = read_vtk(nonsquare / f"surf{suffix}")
    assert set(arrays) >= {"loss", "log_loss", "accuracy", "error"}
    assert meta["checkpoint_sha256"] == s.meta["checkpoint_sha256"] and meta["grid"]["xsteps"] == 5
    if suffix != ".vtp":
        dims = [0, 0, 0]
        out.GetDimensions(dims)
        assert dims == [5, 3, 1]
    # Every point sits at (x_i, y_j, loss_ij * z_scale) and carries the unscaled loss_ij, whatever the point order.
    k = meta["vtk_heights"]["z_scale"]
    assert k > 0 and k == pytest.approx(0.5 * 1.5 / (np.nanmax(s.loss) - np.nanmin(s.loss)), rel=1e-6)
    for p, loss, acc, err in zip(pts, arrays["loss"], arrays["accuracy"], arrays["error"]):
        i = int(np.argmin(np.abs(s.xcoords - p[0])))
        j = int(np.argmin(np.abs(s.ycoords - p[1])))
        assert p[0] == pytest.approx(s.xcoords[i]) and p[1] == pytest.approx(s.ycoords[j])
        assert loss == pytest.approx(s.loss[i, j], rel=1e-6) and p[2] == pytest.approx(loss * k, rel=1e-5)
        assert acc + err == pytest.approx(100.0)
    assert len(pts) == 15


def test_h5_and_npz_layout(nonsquare):
    s = load_surface(nonsquare / "surf.npz")
    assert s.loss.shape == (5, 3) and not np.isnan(s.loss).any()
    np.testing.assert_allclose(s.xcoords, np.linspace(-1, 0.5, 5))
    h = read_li_h5(nonsquare / "surf.h5")
    np.testing.assert_array_equal(h.loss, s.loss)
    np.testing.assert_array_equal(h.ycoords, s.ycoords)
    import h5py

    with h5py.File(nonsquare / "surf.h5") as f:
        assert {"xcoordinates", "ycoordinates", "train_loss", "train_acc", "dir_file"} <= set(f.keys())
        assert f["train_loss"].shape == (3, 5)  # Li's [iy, ix]
        np.testing.assert_array_equal(f["train_loss"][:], s.loss.T)
        assert (nonsquare / "surf_directions.h5").is_file()


def test_png_contour_sharpness_and_interpolation(tiny_run_dir, tmp_path, capsys):
    ck = tiny_run_dir / "ckpt_e003.pt"
    assert main([str(ck), "--out", str(tmp_path / "s.vts"), "--steps", "4", "--max-images", "64", "--quiet",
                 "--png", str(tmp_path / "s.png"), "--contour", str(tmp_path / "c.png"), "--sharpness",
                 "--sharpness-images", "16", "--trajectory", str(tiny_run_dir)]) == 0
    assert (tmp_path / "s.png").stat().st_size > 5000 and (tmp_path / "c.png").stat().st_size > 5000
    rep = json.loads((tmp_path / "s_sharpness.json").read_text())
    assert rep["lambda_max"] > 0 and "rise_within_1_cells" in rep
    assert (tmp_path / "s_trajectory.vtp").is_file()
    # Interpolation: alpha = 0 and 1 reproduce the two checkpoints' own losses.
    a, b = tiny_run_dir / "ckpt_e001.pt", ck
    assert (
        main(
            [
                str(a), "--interpolate", str(b), "--out", str(tmp_path / "i.npz"), "--steps", "3", "--xrange", "0",
                "1", "--max-images", "64", "--quiet",
            ]
        )
        == 0
    )
    s = load_surface(tmp_path / "i.npz")
    for path, loss in ((a, s.loss[0]), (b, s.loss[-1])):
        own = load_surface(_centre(path, tmp_path)).loss
        assert loss == pytest.approx(float(own[0]), rel=1e-5)


def _centre(ckpt, tmp_path):
    out = tmp_path / f"centre_{ckpt.stem}.npz"
    assert main([str(ckpt), "--out", str(out), "--1d", "--steps", "1", "--xrange", "0", "0", "--max-images", "64",
                 "--quiet"]) == 0
    return out


def _cli(*args):
    r = subprocess.run([sys.executable, "-m", "landscape.plot", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def test_bad_checkpoints_one_line_exit_2(tmp_path, tiny_checkpoint):
    corrupt = tmp_path / "c.pt"
    corrupt.write_bytes(tiny_checkpoint.read_bytes()[:3000])
    foreign = tmp_path / "f.pt"
    import torch

    torch.save({"weights": torch.zeros(3)}, foreign)
    for path, needle in ((tmp_path / "missing.pt", "not found"), (corrupt, "truncated"),
                         (foreign, "not an orthokd checkpoint")):
        rc, out, err = _cli(str(path), "--out", str(tmp_path / "x.vtk"))
        assert rc == 2 and out == "" and needle in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(str(tiny_checkpoint), "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "unknown suffix" in err


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_two_ranks_equal_one(tiny_checkpoint, tmp_path):
    args = [str(tiny_checkpoint), "--steps", "3", "4", "--max-images", "64", "--quiet", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "one.npz")]) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "landscape.plot", *args, "--out", str(tmp_path / "two.npz")]
    r = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    one, two = load_surface(tmp_path / "one.npz"), load_surface(tmp_path / "two.npz")
    np.testing.assert_allclose(two.loss, one.loss, rtol=1e-6)
    np.testing.assert_array_equal(two.acc, one.acc)


def test_directions_reused_from_another_surface(tiny_run_dir, tmp_path):
    a, b = tiny_run_dir / "ckpt_e003.pt", tiny_run_dir / "ckpt_e002.pt"
    common = ["--steps", "3", "--max-images", "32", "--quiet"]
    assert main([str(a), "--out", str(tmp_path / "a.npz"), *common]) == 0
    assert main([str(b), "--out", str(tmp_path / "b.npz"), "--directions", str(tmp_path / "a.npz"), *common]) == 0
    sa, sb = load_surface(tmp_path / "a.npz"), load_surface(tmp_path / "b.npz")
    assert sb.meta["directions_sha"] == sa.meta["directions_sha"] and sb.meta["directions_from"].endswith("a.npz")
    for da, db in zip(sa.directions, sb.directions):
        assert all(np.array_equal(da[k].numpy(), db[k].numpy()) for k in da)
    assert main([str(a), "--out", str(tmp_path / "c.npz"), "--1d", *common]) == 0
    assert load_surface(tmp_path / "c.npz").loss.shape == (3,)
    # Our .h5 output's Li direction file carries the same directions back in.
    assert main([str(a), "--out", str(tmp_path / "a.h5"), *common]) == 0
    assert (
        main([str(b), "--out", str(tmp_path / "d.npz"), "--directions", str(tmp_path / "a_directions.h5"), *common])
        == 0
    )
    assert load_surface(tmp_path / "d.npz").meta["directions_sha"] == sa.meta["directions_sha"]
