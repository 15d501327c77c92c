"""Several grid points per vmapped forward (torch.func) against the per-point engine, on whole tiny surfaces of a
real checkpoint and real images; the --points-per-forward flag; torchrun sharding with chunks; cuda:LOCAL_RANK."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from landscape.compute import EngineOptions
from landscape.directions import difference, float_state, random_directions
from landscape.engine import SurfaceEngine
from landscape.plot import main
from landscape.record import load_surface
from training.cli.common import run_cli
from training.errors import UserError
from training.store.checkpoint import load_model

from .formats.test_formats_cli import _free_port

CPU = torch.device("cpu")
# 20 points, none on the line a + b = -1 where, with biases and BN gamma/beta moving along d = w, every BN output and
# the fc bias are exactly 0: all logits tie and the accuracy is only the argmax's tie-breaking.
GRID = [(a, b) for a in np.linspace(-0.9, 0.7, 5) for b in np.linspace(-0.35, 0.85, 4)]


def _chunks(monkeypatch) -> list[int]:
    """Records the number of points of every vmapped forward; the per-point path is refused meanwhile."""
    sizes: list[int] = []
    real = SurfaceEngine._many_sums
    monkeypatch.setattr(SurfaceEngine, "_many_sums", lambda self, c: sizes.append(len(c)) or real(self, c))
    monkeypatch.setattr(SurfaceEngine, "_point_sums", lambda self, c: pytest.fail("per-point path used"))
    return sizes


@pytest.mark.parametrize("fold_bn", [True, False])
def test_whole_surface_independent_of_points_per_forward(model_and_data, monkeypatch, fold_bn):
    """Every point of a 5 x 4 surface (biases and BN gamma/beta moving too) for P = 3, 7 (neither divides 20:
    the last chunk is smaller) and 32 (one chunk) equals the per-point engine, folded and unfolded."""
    model, x, y = model_and_data
    dirs = random_directions(model, 2, seed=5, include_biasbn=True)
    ref = SurfaceEngine(model, dirs, x, y, CPU, batch_size=100, fold_bn=fold_bn, points_per_forward=1).points(GRID)
    assert len({round(loss, 3) for loss, _ in ref}) > 15  # a surface, not a constant
    sizes = _chunks(monkeypatch)
    for p, want in ((3, [3] * 6 + [2]), (7, [7, 7, 6]), (32, [20])):
        sizes.clear()
        got = SurfaceEngine(model, dirs, x, y, CPU, batch_size=100, fold_bn=fold_bn, points_per_forward=p).points(GRID)
        assert sizes == want
        for c, (lr, ar), (lg, ag) in zip(GRID, ref, got):
            assert lg == pytest.approx(lr, rel=1e-5, abs=1e-6), (p, c)
            assert ag == ar, (p, c)


@pytest.mark.parametrize("fold_bn", [True, False])
def test_interpolation_moving_bn_statistics(tiny_run_dir, model_and_data, monkeypatch, fold_bn):
    """A 1-D path between two checkpoints moves BN running statistics too (folded into the weights per point)."""
    _, x, y = model_and_data
    a, _ = load_model(tiny_run_dir / "ckpt_e003.pt")
    b, _ = load_model(tiny_run_dir / "ckpt_e001.pt")
    d = [difference(float_state(a), float_state(b))]
    assert any("running_var" in k and v.abs().max() > 0 for k, v in d[0].items())
    line = [(t,) for t in np.linspace(-0.5, 1.5, 7)]
    ref = SurfaceEngine(a, d, x, y, CPU, fold_bn=fold_bn, points_per_forward=1).points(line)
    _chunks(monkeypatch)
    got = SurfaceEngine(a, d, x, y, CPU, fold_bn=fold_bn, points_per_forward=3).points(line)
    np.testing.assert_allclose([g[0] for g in got], [r[0] for r in ref], rtol=1e-5)
    assert [g[1] for g in got] == [r[1] for r in ref]


def test_bf16_multipoint_close_to_fp32(model_and_data):
    """bf16 autocast with P = 4 stays within 3% of the fp32 loss and 2 images' accuracy on a 3 x 3 surface."""
    model, x, y = model_and_data
    dirs = random_directions(model, 2)
    grid = [(a, b) for a in (-0.5, 0.0, 0.5) for b in (-0.5, 0.0, 0.5)]
    fp32 = SurfaceEngine(model, dirs, x, y, CPU, points_per_forward=1).points(grid)
    bf16 = SurfaceEngine(model, dirs, x, y, CPU, bf16=True, points_per_forward=4).points(grid)
    for (l32, a32), (l16, a16) in zip(fp32, bf16):
        assert l16 == pytest.approx(l32, rel=0.03) and abs(a16 - a32) <= 2 * 100.0 / len(y)
    assert any(l16 != l32 for (l32, _), (l16, _) in zip(fp32, bf16))  # bf16 really ran


def test_cli_flag_reaches_engine_and_keeps_results(tiny_checkpoint, tmp_path, monkeypatch):
    args = [str(tiny_checkpoint), "--steps", "4", "3", "--max-images", "64", "--device", "cpu", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one.npz"), "--points-per-forward", "1"]) == 0
    sizes = _chunks(monkeypatch)
    assert main([*args, "--out", str(tmp_path / "five.npz"), "--points-per-forward", "5"]) == 0
    assert sizes == [5, 5, 2]  # the timed first chunk, then the remaining 7 points
    one, five = load_surface(tmp_path / "one.npz"), load_surface(tmp_path / "five.npz")
    assert five.done
    np.testing.assert_allclose(five.loss, one.loss, rtol=1e-5)
    np.testing.assert_array_equal(five.acc, one.acc)


@pytest.mark.parametrize("value, needle", [("0", "must be a positive integer"), ("-2", "must be a positive integer"),
                                           ("nan", "is not an integer"), ("1.5", "is not an integer")])
def test_bad_points_per_forward_exit_2_one_line(tiny_checkpoint, tmp_path, capsys, value, needle):
    with pytest.raises(SystemExit) as e:
        run_cli(main, [str(tiny_checkpoint), "--out", str(tmp_path / "s.npz"), "--points-per-forward", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error:") and needle in err[0]
    assert not (tmp_path / "s.npz").exists()


def test_library_refuses_nonpositive_points_per_forward(model_and_data):
    model, x, y = model_and_data
    with pytest.raises(UserError, match="--points-per-forward 0"):
        EngineOptions(points_per_forward=0)
    with pytest.raises(UserError, match="--points-per-forward -1"):
        SurfaceEngine(model, random_directions(model, 1), x, y, CPU, points_per_forward=-1)


def test_torchrun_two_ranks_chunked_equal_one(tiny_checkpoint, tmp_path):
    """Points sharded over 2 ranks, then cut into vmapped chunks of 2 on each, equal one process point by point."""
    args = [str(tiny_checkpoint), "--steps", "3", "4", "--max-images", "64", "--quiet", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "one.npz"), "--points-per-forward", "1"]) == 0
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(_free_port()), "-m", "landscape.plot", *args, "--out", str(tmp_path / "two.npz"),
                        "--points-per-forward", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    one, two = load_surface(tmp_path / "one.npz"), load_surface(tmp_path / "two.npz")
    assert two.done
    np.testing.assert_allclose(two.loss, one.loss, rtol=1e-5)
    np.testing.assert_array_equal(two.acc, one.acc)


def test_torchrun_rank_sets_its_cuda_device_before_process_group(tiny_checkpoint, tmp_path, monkeypatch):
    """Under torchrun, --device cuda on local rank 1 means cuda:1, made current before the process group starts."""
    import landscape.plot as plot

    calls = []

    class Stop(Exception):
        pass

    def fake_init(**kwargs):
        calls.append(("init", kwargs["device_id"]))
        raise Stop

    import torch.distributed as tdist

    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(tdist, "is_initialized", lambda: False)
    monkeypatch.setattr(tdist, "init_process_group", fake_init)
    with pytest.raises(Stop):
        plot.main([str(tiny_checkpoint), "--out", str(tmp_path / "s.npz"), "--device", "cuda"])
    assert calls == [("set_device", torch.device("cuda:1")), ("init", torch.device("cuda:1"))]
