"""bench/gpu_check.py: the 10-minute preset at CPU toy size runs every section without the study-only packages and
writes one JSON line per measurement; a time budget skips what does not fit (saying so); a killed run leaves every
finished measurement readable; bad input is one error line; the ETA arithmetic; bench/timing.py's interleaving."""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
# the study-only packages, and what else a bare GPU machine may lack (the lent ones have no vtk/pyvista/loss-landscapes)
BLOCK = ("torch_pruning", "submitit", "tensorboard", "vtk", "pyvista", "loss_landscapes")
# One OpenMP thread: on a host busier than its cores, spinning OpenMP threads made a toy step 10x slower.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def command(*args: str) -> list[str]:
    """bench/gpu_check.py ARGS in a fresh interpreter where the study-only packages cannot be imported."""
    code = (f"import runpy, sys\nfor m in {BLOCK!r}: sys.modules[m] = None\n"
            f"sys.argv = ['bench/gpu_check.py', *{list(args)!r}]\nsys.path.insert(0, 'bench')\n"
            "runpy.run_path('bench/gpu_check.py', run_name='__main__')\n")
    return [sys.executable, "-c", code]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    return importlib.import_module("gpu_check_record"), importlib.import_module("gpu_check_sections")


def test_toy_preset_measures_every_section(tmp_path, bench):
    record = bench[0]
    out = tmp_path / "check"
    p = subprocess.run(
        command("--preset", "10min", "--toy", "--device", "cpu", "--out", str(out), "--budget-s", "1500"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        env=ENV,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    recs = record.read_records(out / "measurements.jsonl")
    got = {(r["section"], r["name"]): r for r in recs}
    assert recs[0]["name"] == "machine" and recs[0]["toy"] and recs[0]["torch"] == torch.__version__
    assert recs[-1]["name"] == "end" and "load average" in recs[-1]["load"]
    for name in ("single", "packed_x2"):  # on a CPU the captured path runs eagerly: bitwise the eager step
        assert got["graphs_vs_eager", name]["max_relative_weight_difference"] == 0.0
    for name in ("fp32", "tf32", "bf16", "bf16_graphs"):
        r = got["train", name]
        assert r["status"] == "ok" and r["seconds_per_step"] > 0 and len(r["rounds"]) == 3
        assert r["seconds_per_epoch_50k"] == pytest.approx(r["seconds_per_step"] * 782)
        assert r["aten_ops_per_call"] > 10 and r["kernels_per_call"] is None  # no GPU: operators, not kernels
    assert sum(r["section"] == "train_round" for r in recs) == 4 * 4  # 1 warm-up + 3 timed rounds per variant
    assert got["packed", "packed_x5_vs_sequential"]["ratio"] > 0
    for name in ("fp32", "tf32", "bf16"):
        r = got["surface", name]
        assert r["numerics"]["precision"] == name and r["seconds_51x51"] == pytest.approx(r["seconds_per_point"] * 2601)
    assert got["surface", "fp32"]["max_relative_loss_deviation_from_fp32"] == 0.0
    assert got["naswot", "per_checkpoint"]["seconds_per_checkpoint"] > 0
    assert set(got["eta", "study"]["goals"]) == {"run_160_epochs_s", "study_26_runs_s", "surface_51x51_50k_s"}
    assert got["compile", "section"]["status"] == "skipped" and "toy" in got["compile", "section"]["reason"]
    assert not [r for r in recs if r["status"] == "failed"]
    assert "| train | bf16_graphs | ok |" in (out / "summary.md").read_text()


def test_sections_that_do_not_fit_the_budget_are_skipped_and_said(tmp_path, bench):
    out = tmp_path / "check"
    p = subprocess.run(command("--toy", "--device", "cpu", "--out", str(out), "--budget-s", "0.001", "--quiet"),
                       cwd=REPO, capture_output=True, text=True, timeout=300, env=ENV)
    assert p.returncode == 0, p.stderr[-2000:]
    skipped = [r for r in bench[0].read_records(out / "measurements.jsonl") if r["status"] == "skipped"]
    assert [r["section"] for r in skipped] == [
        "graphs_vs_eager", "train", "packed", "surface", "naswot", "eta", "compile",
    ]
    assert all("does not fit the time budget" in r["reason"] for r in skipped)


def test_killed_run_leaves_valid_partial_results(tmp_path, bench):
    out = tmp_path / "check"
    results = out / "measurements.jsonl"
    proc = subprocess.Popen(command("--toy", "--device", "cpu", "--out", str(out), "--budget-s", "1500", "--quiet"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and '"section": "graphs_vs_eager"' in results.read_text():
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    text = results.read_text()
    lines = text.splitlines()
    assert text.endswith("\n") and all(json.loads(line) for line in lines)  # every written line is whole JSON
    recs = bench[0].read_records(results)
    assert recs[0]["name"] == "machine" and any(r["section"] == "graphs_vs_eager" for r in recs)
    assert not (out / "summary.md").exists()


@pytest.mark.parametrize("args, needle", [
    (["--toy", "--budget-s", "nan"], "--budget-s"),
    (["--toy", "--data-dir", "/nonexistent/cifar"], "--data-dir"),
    pytest.param([], "--toy", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")),
])
def test_refusals_are_one_error_line(args, needle, tmp_path, capsys, monkeypatch):
    from training.cli.common import run_cli

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    mod = importlib.import_module("gpu_check")
    try:
        rc = run_cli(mod.main, [*args, "--out", str(tmp_path / "o")])
    except SystemExit as e:  # argparse's refusal
        rc = e.code
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_earlier_results_are_never_replaced(tmp_path, capsys, monkeypatch):
    from training.cli.common import run_cli

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    mod = importlib.import_module("gpu_check")
    (tmp_path / "measurements.jsonl").write_text('{"old": 1}\n')
    assert run_cli(mod.main, ["--toy", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "earlier results are kept" in capsys.readouterr().err
    assert (tmp_path / "measurements.jsonl").read_text() == '{"old": 1}\n'


def test_eta_against_the_goals(tmp_path, bench):
    record = bench[0]
    eta = importlib.import_module("gpu_check").eta
    rec = record.Recorder(tmp_path / "m.jsonl", 100.0, quiet=True)
    m = {"train": {"bf16": 0.004, "bf16_graphs": 0.002}, "eval_s": 0.5, "packed": 0.008,
         "surface": {"fp32": 0.2, "bf16": 0.05}, "naswot": 2.0}
    eta(rec, m)
    r = record.read_records(tmp_path / "m.jsonl")[-1]
    run_s = 160 * (0.002 * 782 + 0.5)
    assert r["best_training"] == "bf16_graphs" and r["goals"]["run_160_epochs_s"]["eta_s"] == pytest.approx(run_s)
    study = min(26 * run_s, 6 * 160 * (0.008 * 782 + 5 * 0.5))
    assert r["goals"]["study_26_runs_s"]["eta_s"] == pytest.approx(study)
    assert r["goals"]["surface_51x51_50k_s"] == {"eta_s": pytest.approx(0.05 * 2601), "goal_s": 180.0, "met": True}
    assert r["total_s"] == pytest.approx(study + 15 * 0.05 * 2601 + 25 * 2.0)
    with pytest.raises(record.Skip):
        eta(rec, {})


def test_a_failing_training_variant_leaves_the_others_measured(tmp_path, bench, monkeypatch):
    record, sec = bench
    real = sec.train_one_epoch

    def fails_when_captured(objective, optimizer, data, cfg, *args, **kw):
        if cfg.cuda_graphs:
            raise RuntimeError("capture failed\nsecond line")
        return real(objective, optimizer, data, cfg, *args, **kw)

    monkeypatch.setattr(sec, "train_one_epoch", fails_when_captured)
    rec = record.Recorder(tmp_path / "m.jsonl", 100.0, quiet=True)
    sizes = sec.toy(sec.Sizes(["resnet56", "16"], 1, 1, 1, 1, (1, 1)))
    per_step, runs = sec.train_speed(rec, dataclasses.replace(sizes, train_steps=2), sec.synthetic_set(128, 0),
                                     torch.device("cpu"), ["fp32", "bf16_graphs"])
    assert list(per_step) == ["fp32"] and list(runs) == ["fp32"]
    recs = {(r["section"], r["name"]): r for r in record.read_records(tmp_path / "m.jsonl")}
    assert recs["train", "bf16_graphs"] == {**recs["train", "bf16_graphs"], "status": "failed",
                                            "reason": "RuntimeError: capture failed"}
    assert recs["train", "fp32"]["status"] == "ok"


def test_interleaved_takes_turns_and_at_least_three_rounds(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    timing = importlib.import_module("timing")
    calls = []
    v = timing.interleaved({"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b")}, rounds=2)
    assert calls == ["a", "b"] * 4  # one warm-up round, then max(2, 3) timed rounds, A B A B ...
    assert v["a"] == [1.0] * 3 and len(v["b"]) == 3 and all(t >= 0 for t in v["b"])
    assert "load average" in timing.load_note()
