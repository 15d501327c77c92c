"""The prunable models: parameter counts stated in the docstrings, forward entry points on real images, BN gamma
initialisation of network slimming, and the constructor kwargs that rebuild pruned networks."""
import pytest
import torch

from training.data.datasets import load_split
from training.errors import UserError
from training.models import resnet, slimming
from training.models.registry import MODELS, build_model
from training.store.checkpoint import load_model

# (name, classes) -> parameters; each figure must also be printed in its module's docstring
COUNTS = {
    ("resnet56", 10): 853_018, ("resnet56", 100): 858_868,
    ("resnet110", 10): 1_727_962, ("resnet110", 100): 1_733_812,
    ("vgg19", 10): 20_035_018, ("vgg19", 100): 20_081_188,
    ("densenet40", 10): 1_059_298, ("densenet40", 100): 1_100_428,
}


@pytest.fixture(scope="module")
def images():
    return load_split("cifar10", "test", None, 2).normalized()


@pytest.mark.parametrize("name,classes", list(COUNTS))
def test_parameter_counts_match_docstrings(name, classes):
    n = sum(p.numel() for p in build_model(name, classes).parameters())
    assert n == COUNTS[(name, classes)]
    doc = (resnet if MODELS[name].family == "resnet" else slimming).__doc__
    assert f"{n:,}" in doc


@pytest.mark.parametrize("name,shape", [("vgg19", (512, 2, 2)), ("densenet40", (456, 8, 8))])
def test_forward_entry_points_and_gamma_init(name, shape, images):
    torch.manual_seed(0)
    model = build_model(name, 100).eval()
    feats = model.forward_features(images)
    assert feats.shape == (2, *shape) and model.feature_channels == shape[0]
    logits = model(images)
    assert logits.shape == (2, 100) and torch.isfinite(logits).all()
    torch.testing.assert_close(model.forward_head(feats), logits)
    gammas = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(gammas) == (16 if name == "vgg19" else 39)
    assert all(bool((g == 0.5).all()) for g in gammas)


def test_registered_in_models_dict():
    assert {"vgg19", "densenet40", "resnet56", "resnet110"} <= set(MODELS)


def test_resnet_block_widths_rebuild_and_default_is_backward_compatible():
    torch.manual_seed(0)
    old = build_model("resnet14", 10, width=4)
    same = build_model("resnet14", 10, width=4, block_widths=[4, 4, 8, 8, 16, 16])
    same.load_state_dict(old.state_dict())  # strict: an existing checkpoint loads unchanged
    pruned = build_model("resnet14", 10, width=4, block_widths=[1, 3, 5, 8, 2, 16])
    assert [b.conv1.out_channels for b in pruned.blocks] == [1, 3, 5, 8, 2, 16]
    assert [b.conv2.in_channels for b in pruned.blocks] == [1, 3, 5, 8, 2, 16]
    assert [b.conv2.out_channels for b in pruned.blocks] == [4, 4, 8, 8, 16, 16]  # residual stream whole
    assert pruned(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(UserError, match="block_widths needs 6"):
        build_model("resnet14", 10, width=4, block_widths=[4, 4])


def test_vgg_and_densenet_cfg_rebuild_smaller_networks(images):
    vgg = build_model("vgg19", 10, cfg=[8, "M", 6, "M", 5, "M", 4, "M", 3]).eval()
    assert vgg.feature_channels == 3 and vgg.classifier.in_features == 3 and vgg(images).shape == (2, 10)
    full = slimming.densenet_default_cfg(10, 4)
    assert full == [8, 12, 16, 16, 20, 24, 24, 28, 32]
    small = [3, 5, 2, 9, 1, 4, 7, 6, 10]
    net = build_model("densenet40", 10, depth=10, growth=4, cfg=small).eval()
    assert [m.num_features for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)] == small
    assert net(images).shape == (2, 10) and net.forward_features(images).shape == (2, 10, 8, 8)
    with pytest.raises(UserError, match="four 'M'"):
        build_model("vgg19", 10, cfg=[8, "M", 8])
    with pytest.raises(UserError, match="needs 9 widths"):
        build_model("densenet40", 10, depth=10, growth=4, cfg=small[:-1])
    with pytest.raises(UserError, match="keep 1..32"):
        build_model("densenet40", 10, depth=10, growth=4, cfg=small[:-1] + [33])


def test_train_cli_builds_vgg_and_refuses_resnet_only_flags_and_mismatched_feature_maps(
    tmp_path, tiny_checkpoint, capsys
):
    from training.train import main

    args = ["--device", "cpu", "--quiet", "--max-train-images", "64", "--epochs", "1"]
    assert main([*args, "--model", "vgg19", "--out-dir", str(tmp_path / "vgg")]) == 0
    ck = load_model(tmp_path / "vgg" / "last.pt")[1]
    assert ck["arch"] == {"name": "vgg19", "num_classes": 10}  # no ResNet-only kwargs recorded
    from training.cli.common import run_cli

    assert run_cli(main, [*args, "--model", "vgg19", "--width", "8", "--out-dir", str(tmp_path / "w")]) == 2
    assert "apply to the ResNets only" in capsys.readouterr().err
    # a VGG (2x2 features) cannot feature-distil into a ResNet (8x8): one line, not a broadcasting traceback
    assert run_cli(main, [*args, "--model", "resnet8", "--width", "4", "--method", "feature_kd", "--teacher",
                          str(tmp_path / "vgg" / "last.pt"), "--out-dir", str(tmp_path / "f")]) == 2
    assert "feature maps of one size" in capsys.readouterr().err


@pytest.mark.parametrize("name,count", [("vgg_tiny", 55_746), ("densenet_tiny", 11_974)])
def test_tiny_stand_ins_count_as_their_docstrings_say_and_rebuild_pruned(name, count, images):
    """The demo's stand-ins for VGG-19 and DenseNet-40: counts as documented, and the slimming rule prunes them
    into a cfg that rebuilds through build_model."""
    from training.pruning.rules import prune_model

    torch.manual_seed(0)
    model = build_model(name, 10).eval()
    assert sum(p.numel() for p in model.parameters()) == count and f"{count:,}" in MODELS[name].builder.__doc__
    with torch.no_grad():  # trained gammas differ; at initialisation they all tie at 0.5
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.1, 1.0)
    pruned, arch, _ = prune_model(model, {"name": name, "num_classes": 10}, "slimming", (0.5,))
    rebuilt = build_model(name, 10, cfg=arch["cfg"]).eval()
    rebuilt.load_state_dict(pruned.state_dict())
    assert sum(p.numel() for p in rebuilt.parameters()) < count
    assert torch.equal(rebuilt(images), pruned(images))
