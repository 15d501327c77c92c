"""--seeds: K runs packed into one vmapped forward/backward equal K separate runs (weights, BatchNorm running stats,
momentum, schedule, metrics), write single-run checkpoints, record their packing (a resume under another packing is
refused naming both), and survive kill -9.

Packed and separate runs agree to float tolerance, not bitwise: the vmapped convolutions are grouped convolutions
with another summation order. At the recipe's lr 0.1 such differences grow step by step; changing only the memory
format of a single run moves its weights by ~3e-4 after 4 steps. The tests use lr 0.02, where a wrong CutMix
lambda, a shared BatchNorm statistic or a crossed regressor shows as an error orders of magnitude above the tolerance.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.cli.common import run_cli
from training.store.checkpoint import load_checkpoint, load_model, save_checkpoint
from training.train import main

TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "192",
        "--lr", "0.02", "--lr-milestones", "1"]


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]


def _close(a: torch.Tensor, b: torch.Tensor, rel: float, rms: float, what: str) -> None:
    """|a - b| <= rel * |b| + rms * sqrt(numel) in the Frobenius norm: relative, with an absolute floor of ``rms``
    per element for tensors near zero (BN biases start at 0)."""
    err, scale = (a.double() - b.double()).norm().item(), b.double().norm().item()
    assert err <= rel * scale + rms * a.numel() ** 0.5, f"{what}: |a - b| = {err:.3g}, |b| = {scale:.3g}"


def assert_same_run(a_dir: Path, b_dir: Path) -> None:
    """Two run directories hold the same run: config, epoch/step, weights and BN running stats (num_batches_tracked
    exactly), regressor, momentum buffers in the same parameter order, optimizer groups, scheduler, metrics.
    Momentum is a sum of recent gradients, and gradients amplify float noise at ReLU and L1 kinks, so its bound is
    looser; a crossed run or a wrong lambda gives relative errors of order 1."""
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a_dir, b_dir))
    ca.pop("packed", None), cb.pop("packed", None)  # packed runs record their pack; otherwise the same record
    assert ca == cb
    a, b = load_checkpoint(a_dir / "last.pt"), load_checkpoint(b_dir / "last.pt")
    assert (a["epoch"], a["step"], a["config"]) == (b["epoch"], b["step"], b["config"])
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        if k.endswith("num_batches_tracked"):
            assert torch.equal(a["model"][k], b["model"][k]), k
        else:
            _close(a["model"][k], b["model"][k], 1e-3, 1e-4, k)
    assert a["aux"].keys() == b["aux"].keys()
    for k in a["aux"]:
        for n in a["aux"][k]:
            _close(a["aux"][k][n], b["aux"][k][n], 1e-3, 1e-4, f"aux {k}.{n}")
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) > 0
    for i in sa:
        assert sa[i]["momentum_buffer"].shape == sb[i]["momentum_buffer"].shape
        _close(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"], 5e-2, 1e-3, f"momentum of parameter {i}")
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert a["scheduler"] == b["scheduler"]
    ra, rb = _rows(a_dir), _rows(b_dir)
    assert [r["epoch"] for r in ra] == [r["epoch"] for r in rb]
    for x, y in zip(ra, rb):
        assert x.keys() == y.keys()
        for key in x:
            assert x[key] == pytest.approx(y[key], rel=1e-3, abs=0.6 if key.endswith("acc") else 1e-4), key


# CutMix (each run its own lambda) is in cutmix_label_kd here and in the two resume tests.
@pytest.mark.parametrize("method", ["scratch", "cutmix_label_kd", "feature_kd"])
def test_packed_equals_separate_runs(tmp_path, tiny_checkpoint, method):
    args = [*TINY, "--method", method, "--epochs", "2", "--cutmix-prob", "1.0"]
    if method.endswith("kd"):
        args += ["--teacher", str(tiny_checkpoint)]
    for seed in (0, 1):
        assert main([*args, "--seed", str(seed), "--out-dir", str(tmp_path / f"single-s{seed}")]) == 0
    assert main([*args, "--seeds", "0", "1", "--out-dir", str(tmp_path / "packed-s{seed}")]) == 0
    for seed in (0, 1):
        assert_same_run(tmp_path / f"packed-s{seed}", tmp_path / f"single-s{seed}")
    # The two packed runs did differ (own init, data order, crops and CutMix draws): nothing was shared.
    a, b = (load_checkpoint(tmp_path / f"packed-s{s}" / "last.pt") for s in (0, 1))
    assert not torch.allclose(a["model"]["fc.weight"], b["model"]["fc.weight"], atol=1e-2)
    files = {p.name for p in (tmp_path / "packed-s0").iterdir()}
    assert files == {".lock", "config.json", "metrics.jsonl", "last.pt", "ckpt_e001.pt", "ckpt_e002.pt"}
    model, ck = load_model(tmp_path / "packed-s1" / "ckpt_e001.pt")
    assert ck["epoch"] == 1 and ck["config"]["seed"] == 1 and ck["arch"]["width"] == 4


def test_packing_is_recorded_and_a_resume_under_other_packing_is_refused_naming_both(tmp_path, capsys):
    """A packed pair stopped after epoch 1: resuming one of its runs alone, or in a pack of another size, is refused
    with one line naming both packings (the vmapped step rounds differently), and nothing is touched; the same packed
    command then finishes both. A single run is not resumed under --seeds either."""
    args = [*TINY, "--method", "cutmix", "--epochs", "2", "--cutmix-prob", "1.0"]
    packed = [*args, "--seeds", "0", "1", "--out-dir", str(tmp_path / "p-s{seed}")]
    assert main([*packed, "--stop-after-epoch", "1"]) == 0
    assert json.loads((tmp_path / "p-s0" / "config.json").read_text())["packed"] == 2
    before = (tmp_path / "p-s0" / "last.pt").read_bytes()
    for other, needle in ((["--seed", "0", "--out-dir", str(tmp_path / "p-s0")], "as a single run"),
                          (["--seeds", "0", "--out-dir", str(tmp_path / "p-s{seed}")], "packed with 1 seed(s)")):
        rc = run_cli(main, [*args, *other])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert "packed with 2 seed(s)" in err and needle in err, err
    assert (tmp_path / "p-s0" / "last.pt").read_bytes() == before
    assert main(packed) == 0
    assert [load_checkpoint(tmp_path / f"p-s{s}" / "last.pt")["epoch"] for s in (0, 1)] == [2, 2]
    assert main([*args, "--seed", "0", "--epochs", "2", "--out-dir", str(tmp_path / "single-s0")]) == 0
    rc = run_cli(main, [*args, "--seeds", "0", "1", "--out-dir", str(tmp_path / "single-s{seed}")])
    err = capsys.readouterr().err
    assert rc == 2 and "as a single run" in err and "packed with 2 seed(s)" in err, err
    assert not (tmp_path / "single-s1").exists()


def test_kill_9_then_rerun_equals_uninterrupted(tmp_path):
    args = [*TINY, "--method", "cutmix", "--epochs", "3", "--lr-milestones", "2", "--seeds", "3", "5"]
    assert main([*args, "--out-dir", str(tmp_path / "full-s{seed}")]) == 0
    cmd = [sys.executable, "-m", "training.train", *args, "--out-dir", str(tmp_path / "cut-s{seed}")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any((tmp_path / f"cut-s{s}" / "last.pt").exists() for s in (3, 5)):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before writing a last.pt"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not all((tmp_path / f"cut-s{s}" / "ckpt_e003.pt").exists() for s in (3, 5))
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    for seed in (3, 5):
        assert_same_run(tmp_path / f"cut-s{seed}", tmp_path / f"full-s{seed}")


def test_packed_kd_refuses_a_teacher_of_another_dataset(tmp_path, tiny_checkpoint, capsys):
    """--seeds with a teacher trained on cifar100 is refused as the single run refuses it, before any directory."""
    ckpt = load_checkpoint(tiny_checkpoint)
    other = tmp_path / "c100-teacher.pt"
    save_checkpoint({**ckpt, "config": {**ckpt["config"], "dataset": "cifar100"}}, other)
    rc = run_cli(main, [*TINY, "--epochs", "1", "--method", "label_kd", "--teacher", str(other),
                        "--seeds", "0", "1", "--out-dir", str(tmp_path / "r-s{seed}")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert "trained on cifar100" in err and not list(tmp_path.glob("r-s*"))


@pytest.mark.parametrize("extra,env,needle", [
    (["--seeds", "0", "1", "--seed", "2", "--out-dir", "{d}/r-s{{seed}}"], {}, "--seed and --seeds"),
    (["--seeds", "0", "1", "--out-dir", "{d}/r"], {}, "{seed}"),
    (["--seeds", "0", "1", "0", "--out-dir", "{d}/r-s{{seed}}"], {}, "more than once"),
    (["--seeds", "0", "1", "--out-dir", "{d}/r-s{{seed}}"], {"WORLD_SIZE": "2"}, "torchrun"),
    (["--seeds", "0", "1", "--compile", "--out-dir", "{d}/r-s{{seed}}"], {}, "--compile"),
    (["--seeds", "-1", "--out-dir", "{d}/r-s{{seed}}"], {}, "--seeds"),
    (["--seeds", "--out-dir", "{d}/r-s{{seed}}"], {}, "--seeds"),
])
def test_bad_seeds_one_line_exit_2(tmp_path, capsys, monkeypatch, extra, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    argv = [*TINY, "--epochs", "1", *(a.format(d=tmp_path) for a in extra)]
    try:
        rc = run_cli(main, argv)
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and needle in err, err
    assert list(tmp_path.iterdir()) == []
