"""Whole runs through the CLI: milestone files, bitwise resume, checkpoints, bad input, learning."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training import objectives
from training.errors import CheckpointError
from training.store.checkpoint import load_checkpoint, load_model, save_checkpoint
from training.store.rundir import best_test_acc, final_test_acc
from training.train import main

TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "256"]


def _files(d: Path) -> set[str]:
    """The run's files, without the lock file (.lock) of the process that trained it."""
    return {p.name for p in d.iterdir() if p.name != ".lock"}


def test_milestone_checkpoints_at_each_decay(tmp_path):
    out = tmp_path / "run"
    assert main([*TINY, "--epochs", "6", "--lr-milestones", "2", "4", "--out-dir", str(out)]) == 0
    assert _files(out) == {"config.json", "metrics.jsonl", "last.pt", "ckpt_e002.pt", "ckpt_e004.pt", "ckpt_e006.pt"}
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [round(r["lr"], 6) for r in rows] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert set(rows[0]) == {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "best_test_acc",
                            "seconds", "images_per_s"}
    # best_test_acc: the highest test accuracy so far (the reference trainers' best_prec1 / best_err1)
    accs = [r["test_acc"] for r in rows]
    assert [r["best_test_acc"] for r in rows] == [max(accs[: i + 1]) for i in range(6)]
    assert best_test_acc(out, 6) == max(accs) and final_test_acc(out, 6) == accs[-1] and best_test_acc(out, 7) is None
    assert load_checkpoint(out / "last.pt")["metrics"]["best_test_acc"] == max(accs)
    for e in (2, 4, 6):
        ck = load_checkpoint(out / f"ckpt_e{e:03d}.pt")
        assert ck["epoch"] == e and ck["version"] == 1 and ck["format"] == "orthokd.checkpoint"
        assert ck["metrics"]["test_acc"] == pytest.approx(rows[e - 1]["test_acc"])
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert (out / "last.pt").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would create it, not 0600
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["lr_milestones"] == [2, 4] and cfg["batch_size"] == 64 and cfg["lr"] == 0.1


def test_checkpoint_schema_and_weights_only_round_trip(tiny_checkpoint):
    raw = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    for key in ("format", "version", "arch", "model", "method", "aux", "epoch", "step", "optimizer", "scheduler",
                "scaler", "rng", "config", "metrics", "provenance"):
        assert key in raw
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in raw["model"])
    model, ck = load_model(tiny_checkpoint)
    assert ck["arch"] == {"name": "resnet8", "num_classes": 10, "width": 4, "shortcut": "pad"}
    for k, v in model.state_dict().items():
        assert torch.equal(v, raw["model"][k])


def test_each_load_error_is_one_checkpoint_error(tiny_checkpoint, tmp_path):
    good = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    cases = {}
    cases["missing"] = tmp_path / "nope.pt"
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(tiny_checkpoint.read_bytes()[:2000])
    cases["truncated"] = trunc
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": good["model"]}, foreign)
    cases["not an orthokd"] = foreign
    newer = tmp_path / "newer.pt"
    torch.save({**good, "version": 99}, newer)
    cases["newer"] = newer
    arch = tmp_path / "arch.pt"
    torch.save({**good, "arch": {"name": "vit", "num_classes": 10}}, arch)
    cases["unknown architecture"] = arch
    mismatch = tmp_path / "mismatch.pt"
    save_checkpoint({**{k: v for k, v in good.items() if k not in ("format", "version")},
                     "arch": {"name": "resnet8", "num_classes": 10, "width": 8}}, mismatch)
    cases["do not fit"] = mismatch
    for needle, path in cases.items():
        with pytest.raises(CheckpointError) as e:
            load_model(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg
        assert needle.split()[0] in msg or needle == "missing" and "not found" in msg


def test_resume_equals_uninterrupted_bitwise(tmp_path, tiny_checkpoint):
    """CutMix + feature KD (teacher, CutMix draws and the regressor R all in play), stopped after epoch 1."""
    args = [*TINY, "--method", "cutmix_feature_kd", "--teacher", str(tiny_checkpoint), "--epochs", "3",
            "--lr-milestones", "2", "--cutmix-prob", "0.7"]
    assert main([*args, "--out-dir", str(tmp_path / "full")]) == 0
    assert main([*args, "--out-dir", str(tmp_path / "cut"), "--stop-after-epoch", "1"]) == 0
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    assert main([*args, "--out-dir", str(tmp_path / "cut")]) == 0
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("full", "cut"))
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["aux"]["regressor"]["weight"], b["aux"]["regressor"]["weight"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    def strip(d):
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in d]
    rows = [
        strip(json.loads(ln) for ln in (tmp_path / d / "metrics.jsonl").read_text().splitlines())
        for d in ("full", "cut")
    ]
    assert rows[0] == rows[1]
    assert a["method"]["teacher_sha256"] and len(a["method"]["teacher_sha256"]) == 64


def _cli(args, cwd=None):
    r = subprocess.run([sys.executable, "-m", "training.train", *args], capture_output=True, text=True, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("extra,needle", [
    (["--method", "label_kd"], "--teacher"),
    (["--method", "magic"], "choose from"),
    (["--model", "resnet9"], "choose from"),
    (["--data-dir", "/nonexistent/cifar"], "--data-dir"),
])
def test_bad_input_one_line_exit_2(tmp_path, extra, needle):
    rc, out, err = _cli([*TINY, "--epochs", "1", "--out-dir", str(tmp_path / "r"), *extra])
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("error:")


def test_bad_teachers(tmp_path, tiny_checkpoint):
    trunc = tmp_path / "t.pt"
    trunc.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    good = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    other = tmp_path / "c100.pt"
    from training.models.registry import build_model

    c100 = build_model("resnet8", 100, width=4).state_dict()
    save_checkpoint({**{k: v for k, v in good.items() if k not in ("format", "version")},
                     "arch": {**good["arch"], "num_classes": 100}, "model": c100}, other)
    for teacher, needle in ((tmp_path / "missing.pt", "not found"), (trunc, "truncated"),
                            (tmp_path / "t.pt", "truncated"), (other, "100 classes")):
        rc, _, err = _cli([*TINY, "--method", "label_kd", "--teacher", str(teacher), "--out-dir", str(tmp_path / "r")])
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()


def test_different_config_refused_and_nothing_lost(tmp_path):
    out = tmp_path / "run"
    assert main([*TINY, "--epochs", "1", "--out-dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, _, err = _cli([*TINY, "--epochs", "1", "--lr", "0.05", "--out-dir", str(out)])
    assert rc == 2 and "lr" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    rc, _, err = _cli([*TINY, "--epochs", "1", "--out-dir", str(tmp_path / "other")])
    assert rc == 2 and "not an orthokd run directory" in err
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    assert main([*TINY, "--epochs", "1", "--lr", "0.05", "--out-dir", str(out), "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.05


def test_nan_loss_stops_and_keeps_last_good(tmp_path, monkeypatch, capsys):
    from training.cli.common import run_cli

    out = tmp_path / "run"
    args = [*TINY, "--epochs", "2", "--lr-milestones", "1", "--out-dir", str(out)]
    assert main([*args, "--stop-after-epoch", "1"]) == 0
    last = (out / "last.pt").read_bytes()
    real = objectives.mixed_cross_entropy
    monkeypatch.setattr(objectives, "mixed_cross_entropy", lambda logits, t: real(logits, t) * float("nan"))
    assert run_cli(main, args) == 2
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 2 step 0" in err
    assert (out / "last.pt").read_bytes() == last
    assert not (out / "ckpt_e002.pt").exists()


def test_small_resnet_beats_chance_on_real_images(tmp_path):
    out = tmp_path / "run"
    assert main(["--model", "resnet8", "--width", "8", "--device", "cpu", "--quiet", "--max-train-images", "4000",
                 "--epochs", "4", "--lr-milestones", "3", "--out-dir", str(out)]) == 0
    acc = load_checkpoint(out / "last.pt")["metrics"]["test_acc"]
    assert acc > 30.0, acc  # chance is 10% on the 1000 real test images


def test_torchrun_two_processes_gloo_only_rank0_writes(tmp_path):
    out = tmp_path / "ddp"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "training.train", *TINY, "--epochs", "2", "--lr-milestones", "1", "--out-dir", str(out)],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _files(out) == {"config.json", "metrics.jsonl", "last.pt", "ckpt_e001.pt", "ckpt_e002.pt"}
    ck = load_checkpoint(out / "last.pt")
    assert ck["epoch"] == 2 and ck["step"] == 2 * 4  # 256 images, global batch 64 split over 2 ranks
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # one writer: no duplicated epochs
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
