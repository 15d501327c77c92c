"""Issue 19 item 8: NASWOT's own design, each model scored on one random batch of its own (--batch-mode per-model),
beside the shared batches of the paired design; the BN mode and the batch mode named in every caption."""
import json

import pytest

from diversity import naswot
from diversity.batches import draw_batches, model_seed
from diversity.score import main
from training.checkpoint import load_model
from training.data import checkpoint_split


def _own_batch_score(ck: dict, size: int, seed: int = 0) -> float:
    model, c = load_model(ck["path"])
    (batch,) = draw_batches(checkpoint_split(c["config"], "train"), size, 1, model_seed(seed, ck["sha256"]))
    return naswot(model, batch)


def test_per_model_scores_each_checkpoint_on_its_own_batch(runs_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--runs-dir", str(runs_dir), "--runs", "2", "--batch-size", "32", "--batches", "1",
                 "--batch-mode", "per-model", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    doc = json.loads((out / "scores.json").read_text())
    assert doc["images"]["batch_mode"] == "per-model" and "batches drawn per checkpoint" in doc["caption"]
    assert "BN train mode" in doc["caption"]
    seeds = {model_seed(0, ck["sha256"]) for ck in doc["checkpoints"]}
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
