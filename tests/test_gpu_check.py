"""bench/gpu_check.py: the --smoke run covers every measurement (finite numbers or an explicit reason) in its JSON
and Markdown; the ETA arithmetic; the refusals (no GPU without --smoke, bad flag values)."""
from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "gpu_check.py"
EXPECTED = {
    "train_speed": ["fp32", "tf32", "bf16", "bf16_compile"],
    "packed": ["packed_x5"],
    "accuracy": ["fp32", "bf16", "bf16_minus_fp32"],
    "surface": ["surface_51x51"],
    "naswot": ["per_checkpoint"],
    "eta": ["train_fp32", "train_tf32", "train_bf16", "train_bf16_compile", "train_packed_x5", "surfaces",
            "naswot", "total"],
}
KEY_NUMBER = {"train_speed": "seconds_per_epoch_50k", "packed": "ratio_to_5x_single", "surface": "seconds_51x51",
              "naswot": "seconds_per_checkpoint", "eta": "hours"}


def numbers(d: dict) -> list[float]:
    return [v for v in d.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def test_smoke_reports_every_measurement(tmp_path):
    out = tmp_path / "check"
    p = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--out", str(out), "--quiet"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    md = (out / "gpu_check.md").read_text()
    env = doc["environment"]
    assert env["smoke"] is True and env["torch"] == torch.__version__ and "gpu_check.py" in env["command"]
    assert doc["failed"] == []
    for section, names in EXPECTED.items():
        assert f"## {section}" in md
        assert list(doc[section]) == names, (section, list(doc[section]))
        for name in names:
            r = doc[section][name]
            assert f"| {name} | {r['status']} |" in md
            if r["status"] == "ok":
                assert all(v is not None and math.isfinite(v) for v in numbers(r)), (section, name, r)
                key = KEY_NUMBER.get(section, "test_acc" if name != "bf16_minus_fp32" else "bf16_minus_fp32_points")
                assert math.isfinite(r[key]), (section, name)
            else:
                assert r["status"] == "skipped" and r["reason"].strip(), (section, name, r)
    # torch.compile is skipped in the smoke (tens of seconds on CPU); flag-gated rows carry the flag's name
    assert "compile" in doc["train_speed"]["bf16_compile"]["reason"]
    for section, name, flag in (("train_speed", "fp32", "--no-tf32"), ("train_speed", "tf32", "--tf32"),
                                ("packed", "packed_x5", "--seeds")):
        r = doc[section][name]
        assert r["status"] == "ok" or flag in r["reason"], (name, r)
    # the accuracy rows come from real training on embedded CIFAR-10 images
    assert 0 <= doc["accuracy"]["fp32"]["test_acc"] <= 100
    assert (out / "logs" / "accuracy_fp32.log").read_text().startswith("$ ")


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    return importlib.import_module("gpu_check"), importlib.import_module("gpu_check_report")


def test_milestones_and_eta_arithmetic(gpu_check):
    mod, report = gpu_check
    assert mod.scaled_milestones(160) == [80, 120] and mod.scaled_milestones(15) == [8, 11]
    ok = {"status": "ok"}
    res = {"train_speed": {"bf16": {**ok, "seconds_per_epoch_50k": 10.0}, "fp32": {"status": "skipped", "reason": "x"}},
           "packed": {"packed_x5": {**ok, "seconds_per_epoch_50k": 20.0}},
           "accuracy": {"fp32": {**ok, "overhead_per_epoch_s": 1.0}},
           "surface": {"surface_51x51": {**ok, "seconds_51x51": 720.0}},
           "naswot": {"per_checkpoint": {**ok, "seconds_per_checkpoint": 144.0}}}
    eta = report.eta_section(res, 5)
    assert eta["train_bf16"]["hours"] == pytest.approx(26 * 160 * 11.0 / 3600)
    assert eta["train_fp32"]["status"] == "skipped"
    assert eta["train_packed_x5"]["hours"] == pytest.approx(6 * 160 * 25.0 / 3600)  # ceil(26/5) packs, 5 evals
    assert eta["surfaces"]["hours"] == pytest.approx(3.0) and eta["naswot"]["hours"] == pytest.approx(1.0)
    assert eta["total"]["training"] == "train_packed_x5"
    assert eta["total"]["hours"] == pytest.approx(6 * 160 * 25.0 / 3600 + 4.0)


@pytest.mark.parametrize("args, needle", [
    (["--smoke", "--surface-steps", "0"], "--surface-steps"),
    (["--smoke", "--timing-images", "nan"], "--timing-images"),
    (["--smoke", "--surface-steps", "2"], "at least 3"),
    pytest.param([], "--smoke", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")),
])
def test_refusals_are_one_error_line(gpu_check, args, needle, tmp_path, capsys):
    from training.cli import run_cli

    try:
        rc = run_cli(gpu_check[0].main, [*args, "--out", str(tmp_path / "o")])
    except SystemExit as e:  # argparse's refusal
        rc = e.code
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert not (tmp_path / "o").exists()
