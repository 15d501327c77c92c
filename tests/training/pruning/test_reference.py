"""Tables 1-3 as rethinking-network-pruning ran them: Li et al.'s skip lists with the
paper's ratios, network slimming's pre-activation bottleneck PreResNet-56 (every BN in the threshold and the sparsity
term, channel selection), the detached shortcut and the reference's normalization as the study's default, the
captions that say so, and feature-KD fine-tuning that may start from the initial phase's regressor."""
import json

import pytest
import torch
from torch import nn

from figures.pruning.plan import DEMO, FULL, MICRO, network_note, schedule_run
from figures.study import build_parser as study_parser
from figures.study import prune_spec
from training.cli.common import run_cli
from training.config import TrainConfig
from training.data.datasets import load_split
from training.engine.init import load_regressor
from training.errors import UserError
from training.models.registry import build_model
from training.objectives import CrossEntropy, FeatureKD
from training.prune import main as prune_main
from training.prune_schedule import main as schedule_main
from training.pruning.rules import prune_model
from training.pruning.structured import (
    L1_PRESETS,
    add_slimming_subgradient,
    count_params_macs,
    network_slimming_prune,
    prunable_bns,
    slimming_keep_counts,
)
from training.store.checkpoint import load_checkpoint, save_checkpoint
from training.store.files import sha256_file


@pytest.fixture(scope="module")
def images():
    return load_split("cifar10", "train", None, 16).normalized()


def test_preresnet56_is_network_slimmings_resnet(images):
    """Counts re-derived from network-slimming's models/preresnet.py (depth 56, 18 bottleneck blocks; its own count
    adds 2,704 channel-selection entries: 593,130 / 616,260); every one of its 55 BNs is prunable."""
    for classes, count in ((10, 590_426), (100, 613_556)):
        model = build_model("preresnet56", classes)
        assert sum(p.numel() for p in model.parameters()) == count
    bns = prunable_bns(model)
    assert len(bns) == 55 and sum(bn.num_features for _, bn in bns) == 4048
    assert len(bns) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(torch.all(bn.weight == 0.5) for _, bn in bns)
    assert model.eval().forward_features(images[:2]).shape == (2, 256, 8, 8)
    assert count_params_macs(model) == (613_556, 87_237_632)
    with pytest.raises(UserError, match="9n\\+2"):
        build_model("preresnet56", 10, depth=21)


def test_slimming_a_preresnet_prunes_every_bn_and_computes_the_zeroed_network(images):
    torch.manual_seed(0)
    model = build_model("preresnet_tiny", 10).eval()
    arch = {"name": "preresnet_tiny", "num_classes": 10}
    bns = prunable_bns(model)
    for _, bn in bns:  # trained-like affine parameters and statistics
        bn.weight.data.uniform_(0.05, 1.0), bn.bias.data.uniform_(-0.2, 0.2), bn.running_var.uniform_(0.5, 2.0)
    masks = slimming_keep_counts([bn.weight for _, bn in bns], 0.5)
    pruned, new_arch = network_slimming_prune(model, arch, 0.5)
    assert new_arch["cfg"] == [int(k.sum()) for k in masks] and len(new_arch["cfg"]) == 3 * 3 + 1
    assert sum(new_arch["cfg"]) < sum(bn.num_features for _, bn in bns)
    # bn1 and the final BN select from the stream, which stays whole; bn2/bn3 shrink conv1/conv2
    assert pruned.fc.in_features == new_arch["cfg"][-1] == pruned.feature_channels
    assert [b.conv3.out_channels for b in pruned.blocks] == [16, 32, 64]
    for (_, bn), keep in zip(bns, masks):
        bn.weight.data[~keep] = 0
        bn.bias.data[~keep] = 0
    with torch.no_grad():
        assert torch.allclose(pruned(images), model(images), atol=1e-5)
    model.train()
    model(images).sum().backward()
    every_bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [bn.weight.grad.clone() for bn in every_bn]
    add_slimming_subgradient(model, 1e-2)  # every BN gets the sparsity term, not only bn1
    assert len(every_bn) == len(bns) == 10
    for bn, g in zip(every_bn, before):
        assert torch.allclose(bn.weight.grad - g, 1e-2 * torch.sign(bn.weight))


@pytest.mark.parametrize("name,ratios", [("resnet56", (0.5, 0.6, 0.7)), ("resnet110", (0.8, 0.8, 0.8))])
def test_l1_skip_list_with_the_papers_ratios(name, ratios):
    """Preset B's skip list with ratios of our own: the skipped blocks keep every filter, the others int(c * r)
    (with B's own ratios this is preset B, test_prune_ops' published reductions)."""
    model = build_model(name, 100)
    arch = {"name": name, "num_classes": 100}
    skip, _ = L1_PRESETS[(name, "B")]
    _, new_arch, detail = prune_model(model, arch, "l1", ratios, skip_preset="B")
    n = len(model.blocks) // 3
    expected = [(16, 32, 64)[b // n] if 2 * b + 2 in skip else int((16, 32, 64)[b // n] * ratios[b // n])
                for b in range(3 * n)]
    assert new_arch["block_widths"] == expected
    assert detail["skip"] == list(skip) and detail["skip_preset"] == "B"


def test_prune_cli_skip_flag(tmp_path, capsys):
    """--skip B records B's list; --skip with another rule or with --preset is one error line."""
    name, ratios, arch = "resnet56", (0.5, 0.6, 0.7), {"name": "resnet56", "num_classes": 100}
    model, (skip, _) = build_model(name, 100), L1_PRESETS[(name, "B")]
    ckpt = tmp_path / "c.pt"
    save_checkpoint({"arch": arch, "model": model.state_dict(), "method": {"name": "scratch"}, "epoch": 1,
                     "config": TrainConfig(model=name).to_json()}, ckpt)
    out = tmp_path / "p.pt"
    assert run_cli(prune_main, [str(ckpt), "--rule", "l1", "--remaining", *map(str, ratios), "--skip", "B",
                                "--out", str(out)]) == 0
    assert load_checkpoint(out)["pruning"]["skip"] == list(skip) and "preset B" in capsys.readouterr().out
    for bad in (
        ["--rule", "weight", "--remaining", "0.4", "--skip", "B"],
        ["--rule", "l1", "--preset", "A", "--skip", "B"],
    ):
        assert run_cli(prune_main, [str(ckpt), *bad, "--out", str(tmp_path / "q.pt")]) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_the_study_runs_the_reference_networks_and_pipeline_by_default(tmp_path):
    t1, t2, t3 = (FULL.settings(t) for t in (1, 2, 3))
    assert [s.skip for s in t1] == ["B"] * 4 and [s.model for s in t2] == ["vgg19", "preresnet56", "densenet40"]
    assert t3[0].skip is None
    for model in ("resnet56", "resnet110"):
        cfg = FULL.base(model, 0)
        assert (cfg.shortcut, cfg.normalization) == ("pad-detached", "rethinking")
    assert FULL.base("preresnet56", 0).shortcut == "pad" and FULL.base("vgg19", 0).normalization == "rethinking"
    assert schedule_run(tmp_path, t1[1], "finetuned", "label", 0).parent.name == "l1-0.5-0.6-0.7-skipB"
    # the toy stand-ins have no skip list; the tests' micro preset slims a tiny PreResNet in Table 2, the demo the
    # basic-block ResNet-8 (its longer sparsity training empties a layer of the tiny PreResNet at 50%)
    assert [s.skip for s in DEMO.settings(1)] == [None] * 4 and MICRO.settings(2)[1].model == "preresnet_tiny"
    assert DEMO.settings(2)[1].model == "resnet8"
    # every choice is a figures.study flag
    a = study_parser().parse_args(["--tables", "1", "2", "--prune-shortcut", "pad", "--prune-normalization", "cifar",
                                   "--l1-skip", "none", "--slim-resnet", "basic", "--reuse-regressor"])
    spec = prune_spec(a)
    assert [s.skip for s in spec.settings(1)] == [None] * 4 and spec.settings(2)[1].model == "resnet56"
    assert (spec.base("resnet56", 0).shortcut, spec.base("resnet56", 0).normalization) == ("pad", "cifar")
    assert schedule_run(tmp_path, spec.settings(1)[0], "pre-post", "feature", 0).name == "pre-post-feature-reuseR-s0"
    assert schedule_run(tmp_path, spec.settings(1)[0], "pre-post", "label", 0).name == "pre-post-label-s0"


def test_captions_say_what_the_tables_ran():
    assert "preset B skip list" in network_note(FULL, 1) and "resnet110 [36, 38, 74]" in network_note(FULL, 1)
    assert "pre-activation bottleneck" in network_note(FULL, 2)
    assert "same ResNet-110 runs as Table 1" in network_note(FULL, 3)
    spec = prune_spec(study_parser().parse_args(["--tables", "2", "--slim-resnet", "basic", "--l1-skip", "none"]))
    assert "not the reference's network" in network_note(spec, 2) and "prunes every block" in network_note(spec, 1)


TINY = ["--model", "resnet8", "--width", "4", "--max-train-images", "64", "--epochs", "1", "--lr-milestones",
        "--finetune-epochs", "1", "--eval-batch-size", "500", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.manual_seed(1)
    model = build_model("resnet8", 10, width=4, shortcut="pad")
    save_checkpoint({"arch": {"name": "resnet8", "num_classes": 10, "width": 4, "shortcut": "pad"},
                     "model": model.state_dict(), "method": {"name": "scratch"}, "epoch": 1,
                     "config": TrainConfig(model="resnet8", width=4).to_json()}, path)
    return str(path)


@pytest.mark.parametrize("schedule", ["pre-post", "self-distill"])
def test_feature_kd_fine_tuning_can_start_from_the_initial_regressor(tmp_path, teacher, schedule):
    args = [
        "--schedule", schedule, "--kd", "feature", "--rule", "l1", "--remaining", "0.5", "--teacher", teacher, *TINY,
    ]
    assert run_cli(schedule_main, [*args, "--out-dir", str(tmp_path / "fresh")]) == 0
    assert run_cli(schedule_main, [*args, "--out-dir", str(tmp_path / "reuse"), "--reuse-regressor"]) == 0
    fresh = json.loads((tmp_path / "fresh" / "schedule.json").read_text())
    reuse = json.loads((tmp_path / "reuse" / "schedule.json").read_text())
    assert "regressor" not in fresh["finetune"]  # the default: a fresh R
    assert json.loads((tmp_path / "fresh" / "finetune" / "config.json").read_text())["regressor_init"] is None
    source = tmp_path / "reuse" / "initial" / "last.pt"
    assert reuse["finetune"]["regressor"] == f"reused from {source}"
    ft = load_checkpoint(tmp_path / "reuse" / "finetune" / "last.pt")
    assert ft["config"]["regressor_init"] == str(source)
    assert ft["method"]["regressor_init_sha256"] == sha256_file(source)
    # the two runs share the initial phase; only R's start differs, so their fine-tuned weights do too
    assert not torch.equal(ft["aux"]["regressor"]["weight"],
                           load_checkpoint(tmp_path / "fresh" / "finetune" / "last.pt")["aux"]["regressor"]["weight"])


def test_a_regressor_of_the_wrong_shape_or_method_is_one_error(tmp_path, images):
    """Slimming shrinks PreResNet's final BN view, so the initial phase's R no longer fits the pruned student."""
    torch.manual_seed(0)
    full = build_model("preresnet_tiny", 10).eval()
    for _, bn in prunable_bns(full):
        bn.weight.data.uniform_(0.05, 1.0)
    pruned, _ = network_slimming_prune(full, {"name": "preresnet_tiny", "num_classes": 10}, 0.5)
    source = tmp_path / "initial.pt"
    r = nn.Conv2d(64, 64, 1, bias=False)
    save_checkpoint({"arch": {"name": "preresnet_tiny", "num_classes": 10}, "model": full.state_dict(),
                     "method": {"name": "feature_kd"}, "aux": {"regressor": r.state_dict()}, "epoch": 1,
                     "config": TrainConfig(model="preresnet_tiny").to_json()}, source)
    with pytest.raises(UserError, match=r"shape \(64, 64, 1, 1\) but this student/teacher pair needs"):
        load_regressor(FeatureKD(pruned, full), str(source))
    objective = FeatureKD(build_model("preresnet_tiny", 10), full)
    load_regressor(objective, str(source))
    assert torch.equal(objective.regressor.weight, r.weight)
    with pytest.raises(UserError, match="feature_kd method"):
        load_regressor(CrossEntropy(pruned), str(source))
