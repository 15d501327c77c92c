"""Surfaces set their precision and cuDNN autotuning explicitly (whatever ran before in the process), record them as
metadata ``numerics`` (npz / h5 / VTK field data all carry the metadata), restore the previous settings, refuse to
resume a store in another precision, and copy results to the host once per batch of points, not per point."""
import pytest
import torch

import landscape
from landscape.compute import EngineOptions
from landscape.directions import random_directions
from landscape.engine import SurfaceEngine
from landscape.record import load_surface
from training.errors import UserError

CPU = torch.device("cpu")


def _settings():
    return (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision,
            torch.backends.cudnn.benchmark)


@pytest.mark.parametrize("opts, precision, during", [
    (EngineOptions(), "fp32", ("ieee", "ieee", True)),
    (EngineOptions(tf32=True, cudnn_benchmark=False), "tf32", ("tf32", "tf32", False)),
    (EngineOptions(bf16=True), "bf16", ("ieee", "ieee", True)),
])
def test_precision_and_autotuning_set_recorded_and_restored(model_and_data, monkeypatch, opts, precision, during):
    model, x, y = model_and_data
    seen = []
    real = SurfaceEngine.points
    monkeypatch.setattr(SurfaceEngine, "points", lambda self, c: seen.append(_settings()) or real(self, c))
    before = _settings()
    s = landscape.surface(model, (x[:32], y[:32]), steps=2, device="cpu", options=opts)
    assert s.meta["numerics"] == {"precision": precision, "cudnn_benchmark": opts.cudnn_benchmark, "device": "cpu"}
    assert seen and all(v == during for v in seen)
    assert _settings() == before


def test_store_records_numerics_and_refuses_another_precision(model_and_data, tmp_path):
    model, x, y = model_and_data
    store = tmp_path / "s.npz"
    landscape.surface(model, (x[:32], y[:32]), steps=2, device="cpu", store=store)
    assert load_surface(store).meta["numerics"]["precision"] == "fp32"
    with pytest.raises(UserError, match="computed in fp32, this run asks for bf16"):
        landscape.surface(model, (x[:32], y[:32]), steps=2, device="cpu", store=store, options=EngineOptions(bf16=True))
    with pytest.raises(UserError, match="one precision"):
        EngineOptions(bf16=True, tf32=True)


def test_points_copy_results_to_the_host_once(model_and_data, monkeypatch):
    model, x, y = model_and_data
    engine = SurfaceEngine(model, random_directions(model, 2), x[:64], y[:64], CPU)
    coords = [(a, b) for a in (-0.5, 0.0, 0.5) for b in (-0.5, 0.5)]
    each = [engine.point(c) for c in coords]
    copies = []
    real = SurfaceEngine._results
    monkeypatch.setattr(SurfaceEngine, "_results", lambda self, sums: copies.append(sums.shape) or real(self, sums))
    assert engine.points(coords) == each and copies == [(2, len(coords))]
