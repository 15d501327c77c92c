"""Tables 7-8's Hessian numbers and ``landscape.plot --sharpness`` are one computation
(landscape.sharpness.checkpoint_sharpness): the same checkpoint, images and settings give the same numbers."""
import importlib
import json

import torch

from figures.analysis.hessian import HessianSettings, hessian_numbers
from landscape.plot import main

LOOSE = {"rel_se": 0.25, "max_samples": 40, "sketch": 4, "max_iters": 20}  # keeps the test fast


def test_cli_and_tables_give_the_same_hessian_numbers(tiny_checkpoint, tmp_path, monkeypatch):
    sharpness = importlib.import_module("landscape.sharpness")  # the module (landscape.sharpness is the function)
    full = sharpness.sharpness_report
    monkeypatch.setattr(sharpness, "sharpness_report", lambda *a, **k: full(*a, **{**k, **LOOSE}))
    assert main([str(tiny_checkpoint), "--out", str(tmp_path / "s.npz"), "--steps", "3", "--max-images", "24",
                 "--sharpness", "--sharpness-images", "16", "--device", "cpu", "--quiet"]) == 0
    cli = json.loads((tmp_path / "s_sharpness.json").read_text())
    monkeypatch.undo()
    cache = tmp_path / "hessian.json"
    tables = hessian_numbers(tiny_checkpoint, HessianSettings(images=16, **LOOSE), torch.device("cpu"), cache)
    assert tables["images"] == cli["images"] == 16 and "first 16 images" in cli["hessian_data"]
    assert {k: cli[k] for k in tables} == tables
    assert hessian_numbers(tiny_checkpoint, HessianSettings(images=16, **LOOSE), torch.device("cpu"), cache) == tables
