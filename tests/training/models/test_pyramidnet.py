"""PyramidNets (CutMix-PyTorch definitions): parameter counts, additive widening, zero-padded shortcut, no ReLU at
the block output, the feature map feature KD uses, the pyramidnet recipe (Nesterov recorded), per-model beta, and
the pruning rules refusing them."""
import json

import pytest
import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.data.datasets import load_split
from training.errors import UserError
from training.models.pyramidnet import PyramidNet
from training.models.registry import MODELS, build_model
from training.objectives import FeatureKD, default_feature_beta
from training.pruning.rules import prune_model
from training.store.checkpoint import load_model
from training.train import config_from_args, main, parse_args


def _params(name: str, num_classes: int, **kwargs) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init time for the 40 M-parameter net
        return sum(p.numel() for p in build_model(name, num_classes, **kwargs).parameters())


@pytest.mark.parametrize("name,c10,c100", [
    ("pyramidnet110_a64", 1_696_410, 1_725_300),  # 1.7 M (bottleneck, CutMix's default)
    ("pyramidnet200_a240", 26_752_702, 26_844_952),  # 26.8 M
    ("pyramidnet200_a300", 40_211_050, 40_324_900),
])
def test_parameter_counts_of_the_bottleneck_nets(name, c10, c100):
    assert _params(name, 10) == c10 and _params(name, 100) == c100


def test_basic_blocks_do_not_give_the_papers_size():
    assert _params("pyramidnet110_a64", 10, bottleneck=False) == 2_616_376  # not 1.7 M: the paper's are bottleneck


def test_additive_widening_and_final_width():
    """Block k (1-based) of PyramidNet-110 a64 (n = 12) has round(16 + 64 k / 36) inner channels, x4 at its output."""
    m = PyramidNet(110, 64, 10)
    inner = [b.residual[1].out_channels for b in m.blocks]
    assert inner == [round(16 + 64 * k / 36) for k in range(1, 37)]
    assert [b.c_out for b in m.blocks] == [4 * w for w in inner]
    assert m.feature_channels == 320 and m.fc.in_features == 320
    assert build_model("pyramidnet200_a240", 10).feature_channels == 4 * (16 + 240)


@pytest.fixture(scope="module")
def images():
    s = load_split("cifar10", "train", None, 8)
    return (s.images.float() / 255 - 0.5) / 0.25


def test_shortcut_is_zero_padded_avg_pool_and_blocks_end_without_relu(images):
    m = build_model("pyramidnet_tiny", 10).eval()
    x = m.stem(images)
    for b in m.blocks:
        c_in = x.shape[1]
        s = b.shortcut(x)
        pooled = F.avg_pool2d(x, 2) if b.shortcut.stride == 2 else x
        assert torch.equal(s[:, :c_in], pooled) and not s[:, c_in:].any() and s.shape[1] == b.c_out
        out = b(x)
        assert (out < 0).any()  # no ReLU after the addition
        x = out
    assert [b.shortcut.stride for b in m.blocks] == [1, 2, 2]


def test_forward_features_is_the_map_before_pooling(images):
    m = build_model("pyramidnet_tiny", 10, depth=20, alpha=24, bottleneck=True).eval()
    feats = m.forward_features(images)
    assert feats.shape == (8, m.feature_channels, 8, 8) and (feats >= 0).all()  # after the final BN-ReLU
    assert torch.allclose(m(images), m.fc(feats.mean((2, 3))), atol=1e-6)
    teacher = build_model("pyramidnet_tiny", 10, alpha=20).eval()
    kd = FeatureKD(m, teacher, beta=1.0)  # student 4*(16+24) channels -> teacher 4*(16+20) through R
    assert kd.regressor.weight.shape == (teacher.feature_channels, m.feature_channels, 1, 1)


def test_depth_must_fit_the_block():
    with pytest.raises(UserError, match="9n\\+2"):
        PyramidNet(110 + 1, 64, 10)
    assert PyramidNet(110, 64, 10, bottleneck=False).blocks[0].residual[1].kernel_size == (3, 3)  # 6n+2, basic


def test_feature_kd_beta_per_model():
    assert default_feature_beta("pyramidnet110_a64") == 1000.0
    assert default_feature_beta("pyramidnet200_a240") == default_feature_beta("pyramidnet200_a300") == 2000.0
    assert default_feature_beta("pyramidnet_tiny") == 1000.0  # the demo's stand-in takes PyramidNet-110's value
    with pytest.raises(UserError, match="--feature-beta"):
        default_feature_beta("wideresnet28")


def test_pyramidnet_recipe_sets_nesterov_and_explicit_flags_win():
    a = parse_args(["--out-dir", "x", "--recipe", "pyramidnet", "--lr", "0.1"])
    a.seed = 0
    cfg = config_from_args(a)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == (300, 64, 0.1, 0.9, 1e-4)
    assert cfg.lr_milestones == (150, 225) and cfg.lr_gamma == 0.1 and cfg.nesterov
    a = parse_args(["--out-dir", "x"])
    assert not a.nesterov and a.epochs == 160 and a.lr == 0.1  # the ResNet recipe stays the default
    with pytest.raises(UserError, match="--nesterov"):
        TrainConfig(nesterov=True, momentum=0.0)


def test_tiny_pyramidnet_trains_with_nesterov_recorded(tmp_path):
    out = tmp_path / "r"
    assert main(["--model", "pyramidnet_tiny", "--recipe", "pyramidnet", "--epochs", "1", "--max-train-images", "64",
                 "--batch-size", "32", "--device", "cpu", "--quiet", "--out-dir", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["nesterov"] is True
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert (
        ckpt["optimizer"]["param_groups"][0]["nesterov"] is True and ckpt["optimizer"]["param_groups"][0]["lr"] == 0.25
    )
    assert ckpt["arch"]["name"] == "pyramidnet_tiny" and ckpt["optimizer"]["state"]  # momentum buffers exist
    model, _ = load_model(out / "last.pt")  # rebuilt from arch, as teachers, landscape and diversity load it
    assert isinstance(model, PyramidNet) and model.feature_channels == 4 * (16 + 12)


@pytest.mark.parametrize("rule,remaining,needle", [("l1", [0.5], "ResNets only"), ("slimming", [0.5], "no structured")])
def test_structured_pruning_refuses_pyramidnets(rule, remaining, needle):
    m = build_model("pyramidnet_tiny", 10)
    with pytest.raises(UserError, match=needle) as e:
        prune_model(m, {"name": "pyramidnet_tiny", "num_classes": 10}, rule, remaining)
    assert "\n" not in str(e.value)


def test_registered():
    assert {"pyramidnet110_a64", "pyramidnet200_a240", "pyramidnet200_a300", "pyramidnet_tiny"} <= set(MODELS)
