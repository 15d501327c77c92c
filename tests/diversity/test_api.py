"""diversity.naswot / diversity.score_models on models that are not ours, and diversity.score --model."""
import math

import numpy as np
import pytest
import torch
import torchvision
from scipy import stats
from torch import nn

import diversity
from diversity.score import main
from training.cli.common import run_cli
from training.data.datasets import load_split


@pytest.fixture(scope="module")
def images():
    return load_split("cifar10", "train", None, 48).normalized()


def formula(j: torch.Tensor, k: float = 1e-5) -> float:
    """NASWOT v1 written out: C_ab = <J_a - mean, J_b - mean> / (|J_a - mean| |J_b - mean|), then
    -sum(log(v + k) + 1 / (v + k)) over the eigenvalues v of C."""
    c = j.detach().double() - j.detach().double().mean(1, keepdim=True)
    c = c / c.norm(dim=1, keepdim=True)
    v = torch.linalg.eigvalsh(c @ c.T)
    return float(-(torch.log(v + k) + 1 / (v + k)).sum())


def resnet18(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=10)


def test_naswot_of_a_torchvision_model_equals_the_formula(images):
    x = images[:12]
    model = resnet18(0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # eval mode: each image's own gradient of its summed logits (per-image, through torch.func)
    m = resnet18(0).eval()
    per_image = torch.func.vmap(torch.func.grad(lambda xi: m(xi[None]).sum()))(x).reshape(12, -1)
    assert diversity.naswot(model, x, bn_mode="eval") == pytest.approx(formula(per_image), rel=1e-6)
    # train mode (NASWOT's harness): BN couples the batch; J = d(sum of all logits)/dx by one backward
    t = resnet18(0).train()
    xg = x.clone().requires_grad_(True)
    t(xg).sum().backward()
    assert diversity.naswot(model, x) == pytest.approx(formula(xg.grad.reshape(12, -1)), rel=1e-6)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def small(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_score_models_gives_table_6_statistics_on_shared_batches(images):
    groups = {"other": [small(0), small(1), small(2)], "scratch": [small(3), small(4), small(5)]}
    table = diversity.score_models(groups, images, batch_size=16, batches=2, seed=3, device="cpu")
    idx = torch.randperm(48, generator=torch.Generator().manual_seed(3))[:32]
    batches = images[idx].split(16)
    expected = {g: [np.mean([diversity.naswot(m, b) for b in batches]) for m in ms] for g, ms in groups.items()}
    for g in groups:
        np.testing.assert_allclose(table.scores[g], expected[g], rtol=1e-9)
    rows = {s.method: s for s in table.summaries}
    assert [s.method for s in table.summaries] == ["other", "scratch"]
    for g, v in expected.items():
        std = float(np.std(v, ddof=1))
        err = std / math.sqrt(3)
        r = rows[g]
        assert (r.n, r.mean, r.std, r.err_margin) == (
            3, pytest.approx(np.mean(v)), pytest.approx(std), pytest.approx(err),
        )
        assert r.ci99_z == pytest.approx(2.576 * err) and r.ci99_t == pytest.approx(stats.t.ppf(0.995, 2) * err)
    assert rows["other"].welch_p == pytest.approx(stats.ttest_ind(expected["other"], expected["scratch"],
                                                                  equal_var=False).pvalue)
    assert math.isnan(rows["scratch"].welch_p) and str(table).splitlines()[0].startswith("method")


def test_score_cli_with_a_torchvision_model_equals_the_api(tmp_path, capsys):
    paths = []
    for seed in (0, 1):
        paths.append(tmp_path / f"w{seed}.pt")
        torch.save({"model": resnet18(seed).state_dict()}, paths[-1])
    assert main(["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 10}', *map(str, paths),
                 "--group", "r18", "--batch-size", "4", "--batches", "2", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "out")]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("r18"))
    x = load_split("cifar10", "train").normalized()
    api = diversity.score_models({"r18": [resnet18(0), resnet18(1)]}, x, batch_size=4, batches=2, device="cpu")
    assert float(row.split()[2]) == pytest.approx(api.summaries[0].mean, abs=1e-3)
    assert (tmp_path / "out" / "scores.json").exists() and (tmp_path / "out" / "scores.csv").exists()


@pytest.mark.parametrize("extra, needle", [
    (["--model", "torchvision:resnet18"], "returns (2, 1000)"),
    (["--model", "torchvision:resnet34", "--model-kwargs", '{"num_classes": 10}', "W"], "does not fit "
                                                                                        "torchvision:resnet34"),
    (["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 10}', "--pairwise"], "need orthokd "
                                                                                                 "checkpoints"),
    (["--model-kwargs", '{"num_classes": 10}'], "applies to --model only"),
])
def test_score_cli_refuses_bad_models_in_one_line(extra, needle, tmp_path, capsys):
    torch.save(small(0).state_dict(), tmp_path / "w.pt")
    argv = [str(tmp_path / "w.pt") if a == "W" else a for a in extra]
    rc = run_cli(main, [*argv, "--batch-size", "4", "--batches", "1", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_score_cli_without_weights_scores_the_seeded_initialization(capsys):
    argv = ["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 10}', "--batch-size", "4",
            "--batches", "1", "--seed", "2", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    row = capsys.readouterr().out.splitlines()[-1].split()
    x = load_split("cifar10", "train").normalized()
    batch = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(2))[:4]]
    assert row[:2] == ["torchvision:resnet18", "1"]
    assert float(row[2]) == pytest.approx(diversity.naswot(resnet18(2), batch), abs=1e-3)


def test_score_model_files_takes_explicit_arguments(tmp_path):
    """diversity.api.score_model_files (what diversity.score --model runs) needs no argparse Namespace."""
    from diversity.api import score_model_files
    from diversity.config import ScoreConfig

    path = tmp_path / "w.pt"
    torch.save({"model": resnet18(0).state_dict()}, path)
    cfg = ScoreConfig(batch_size=4, batches=2)
    scores, summaries = score_model_files("torchvision:resnet18", [str(path)], cfg, torch.device("cpu"),
                                          model_kwargs={"num_classes": 10}, group="r18")
    x = load_split("cifar10", "train").normalized()
    api = diversity.score_models({"r18": [resnet18(0)]}, x, batch_size=4, batches=2, device="cpu")
    assert [s.batch_scores for s in scores] == api.batch_scores["r18"] and summaries[0].method == "r18"
    assert scores[0].config["normalization"] == "the dataset's" and scores[0].arch == {"name": "torchvision:resnet18",
                                                                                      "num_classes": 10}
