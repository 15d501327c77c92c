"""--cuda-graphs (training.engine.graphs): the captured step's code path (static buffers, CutMix lambda as a device
tensor, the eager last batch) gives bitwise the weights, momentum and metrics of the plain eager step on a CPU,
where nothing is captured; single and packed (--seeds) runs; recorded in config.json; refused under torchrun.
The GPU comparison (captured vs eager to float tolerance) is part of bench/gpu_check.py."""
import json
from pathlib import Path

import pytest
import torch

from training.cli.common import run_cli
from training.config import TrainConfig
from training.data.augment import Targets
from training.engine.graphs import GraphedStep
from training.engine.run import check_config
from training.errors import UserError
from training.objectives import mixed_cross_entropy
from training.runtime.distributed import DistInfo
from training.store.checkpoint import load_checkpoint
from training.train import main

# 200 images: three full batches of 64 and an eager last batch of 8; two epochs: a new static step per epoch
TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "200",
        "--epochs", "2", "--lr-milestones", "1"]


def _same_runs(a_dir: Path, b_dir: Path) -> None:
    a, b = load_checkpoint(a_dir / "last.pt"), load_checkpoint(b_dir / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["aux"]:
        for n in a["aux"][k]:
            assert torch.equal(a["aux"][k][n], b["aux"][k][n]), (k, n)
    for i, s in a["optimizer"]["state"].items():
        assert torch.equal(s["momentum_buffer"], b["optimizer"]["state"][i]["momentum_buffer"]), i
    def strip(d):
        return [{k: v for k, v in json.loads(r).items() if k not in ("seconds", "images_per_s")}
                           for r in (d / "metrics.jsonl").read_text().splitlines()]
    assert strip(a_dir) == strip(b_dir)


def test_graphed_step_path_equals_eager_step_on_cpu(tmp_path):
    for name, extra in (("eager", []), ("graphs", ["--cuda-graphs"])):
        assert run_cli(main, [*TINY, "--method", "cutmix", "--out-dir", str(tmp_path / name), *extra]) == 0
    assert json.loads((tmp_path / "graphs" / "config.json").read_text())["cuda_graphs"] is True
    assert json.loads((tmp_path / "eager" / "config.json").read_text())["cuda_graphs"] is False
    _same_runs(tmp_path / "eager", tmp_path / "graphs")


def test_packed_graphed_step_path_equals_packed_eager_on_cpu(tmp_path):
    for name, extra in (("eager", []), ("graphs", ["--cuda-graphs"])):
        args = [
            *TINY, "--epochs", "1", "--method", "scratch", "--seeds", "0", "1", "--out-dir",
            str(tmp_path / name / "s{seed}"), *extra,
        ]
        assert run_cli(main, args) == 0
    for seed in (0, 1):
        _same_runs(tmp_path / "eager" / f"s{seed}", tmp_path / "graphs" / f"s{seed}")


def test_static_buffers_and_eager_last_batch():
    seen = []

    def step(batches):
        seen.append(batches)
        return (batches[0][0].sum(),)

    g = GraphedStep(step, capture=False, mixes=True)
    x1, x2, small = torch.ones(4, 3), 2 * torch.ones(4, 3), torch.ones(2, 3)
    y = torch.arange(4)
    assert g([(x1, Targets(y, y, 1.0))])[0] == 12 and g([(x2, Targets(y, y.flip(0), 0.75))])[0] == 24
    (s1, t1), (s2, t2) = seen[0][0], seen[1][0]
    assert s1 is s2 and t1.lam is t2.lam  # one set of static buffers, refilled in place
    assert isinstance(t2.lam, torch.Tensor) and t2.lam.item() == 0.75 and torch.equal(t2.b, y.flip(0))
    last = (small, Targets(y[:2], y[:2], 1.0))
    assert g([last])[0] == 6 and seen[-1][0] is last  # another shape: the batch itself, eagerly


def test_tensor_lambda_of_one_is_plain_cross_entropy_bitwise():
    torch.manual_seed(0)
    logits = torch.randn(8, 10, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    plain = mixed_cross_entropy(logits, Targets(y, y, 1.0))
    (g_plain,) = torch.autograd.grad(plain, logits)
    mixed = mixed_cross_entropy(logits, Targets(y, y, torch.tensor(1.0)))
    (g_mixed,) = torch.autograd.grad(mixed, logits)
    assert torch.equal(plain, mixed) and torch.equal(g_plain, g_mixed)


def test_cuda_graphs_refused_under_torchrun():
    with pytest.raises(UserError, match="--cuda-graphs"):
        check_config(TrainConfig(cuda_graphs=True), DistInfo(rank=0, world_size=2))


def test_study_passes_cuda_graphs_to_every_training_run():
    from figures import study
    from figures.analysis.stage import train_config

    a = study.build_parser().parse_args(["--demo", "--out-dir", "x", "--cuda-graphs", "--tables", "1", "4", "6"])
    assert train_config(study.study_spec(a), "scratch", 0, None).cuda_graphs
    pruning = study.prune_spec(a)
    assert pruning.base(pruning.settings(1)[0].model, 0).cuda_graphs
    aug = study.augment_spec(a)
    assert aug.config(aug.settings(4)[0], None, True, 0).cuda_graphs
    plain = study.build_parser().parse_args(["--demo", "--out-dir", "x"])
    assert not train_config(study.study_spec(plain), "scratch", 0, None).cuda_graphs
