"""NASWOT's own design, each model scored on one random batch of its own (--batch-mode per-model),
beside the shared batches of the paired design; the BN mode and the batch mode named in every caption."""
import json
import math

import numpy as np
import pytest
import torch

from diversity import naswot
from diversity.batches import draw_batches, model_seed
from diversity.score import main
from training.data.datasets import checkpoint_split
from training.store.checkpoint import load_model


def _own_batch_score(ck: dict, size: int, seed: int = 0) -> float:
    model, c = load_model(ck["path"])
    (batch,) = draw_batches(checkpoint_split(c["config"], "train"), size, 1, model_seed(seed, ck["weights_sha256"]))
    return naswot(model, batch)


def test_per_model_scores_each_checkpoint_on_its_own_batch(runs_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--runs-dir", str(runs_dir), "--runs", "2", "--batch-size", "32", "--batches", "1",
                 "--batch-mode", "per-model", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    doc = json.loads((out / "scores.json").read_text())
    assert doc["images"]["batch_mode"] == "per-model" and "batches drawn per checkpoint" in doc["caption"]
    assert "BN on batch statistics, Dropout off" in doc["caption"]
    seeds = {model_seed(0, ck["weights_sha256"]) for ck in doc["checkpoints"]}
    assert len(seeds) == 4  # four models, four draws
    for ck in doc["checkpoints"]:
        assert ck["batch_scores"][0] == pytest.approx(_own_batch_score(ck, 32), rel=1e-6, abs=1e-6)
    # A model's batch does not depend on the others: scored alone it gets the same number.
    one = doc["checkpoints"][2]
    assert main([one["path"], "--batch-size", "32", "--batches", "1", "--batch-mode", "per-model", "--quiet"]) == 0
    assert f"{one['score']:.3f}" in capsys.readouterr().out
    # The shared design scores every model on the seed-0 batch instead.
    assert main([one["path"], "--batch-size", "32", "--batches", "1", "--quiet", "--bn-mode", "eval"]) == 0
    assert f"{one['score']:.3f}" not in capsys.readouterr().out


def test_per_model_is_refused_for_external_models(tmp_path):
    from training.errors import UserError

    with pytest.raises(UserError, match="--batch-mode per-model need orthokd checkpoints"):
        main(["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 10}', "--batch-size", "8",
              "--batches", "1", "--batch-mode", "per-model", "--quiet"])


def test_table6_one_batch_per_model_columns_bn_mode_and_n(runs_dir, tmp_path):
    """Table 6: beside the shared batches, every run scored on one random batch of its own (NASWOT's design),
    recomputed here with diversity.naswot; the caption names the BN mode and what the paper's scores say about N."""
    from diversity.config import ScoreConfig
    from figures.analysis.table6 import make_table6

    make_table6(runs_dir, tmp_path, ScoreConfig(batch_size=32, batches=2), 2, torch.device("cpu"), quiet=True)
    doc = json.loads((tmp_path / "table6.json").read_text())
    assert "BatchNorm in train mode" in doc["caption"] and "N <= 141, and 32 is assumed" in doc["caption"]
    per_method: dict[str, list[float]] = {}
    for ck in json.loads((tmp_path / "scores.json").read_text())["checkpoints"]:
        assert len(ck["batch_scores"]) == 2  # the shared design's scores stay what they were
        per_method.setdefault({"scratch": "Scratch", "label_kd": "Label"}[ck["method"]], []).append(
            _own_batch_score(ck, 32))
    rows = {r["method"]: r for r in doc["rows"]}
    for name, xs in per_method.items():
        std = float(np.std(xs, ddof=1))
        assert rows[name]["1 batch/model mean"] == pytest.approx(np.mean(xs), rel=1e-6)
        assert rows[name]["1 batch/model std"] == pytest.approx(std, rel=1e-4, abs=1e-6)
        assert rows[name]["1 batch/model 99% (z)"] == pytest.approx(2.576 * std / math.sqrt(2), rel=1e-4, abs=1e-6)
    assert rows["Scratch"]["1 batch/model verdict"] == "reference"
    assert "1 batch/model 99% (z)" in (tmp_path / "table6.md").read_text()
