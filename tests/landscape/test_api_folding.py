"""BN folding of arbitrary models (landscape.folding): folded where fuse folds, the rest as it is, and the
plain engine for models torch.fx cannot trace; every result equals the unfolded engine."""
import pytest
import torch
import torchvision

from landscape.directions import random_directions
from landscape.engine import SurfaceEngine
from landscape.folding import FoldedNetwork, NotFoldable, conv_bn_pairs
from training.data.datasets import load_split

from .test_api_models import DynamicNet, SharedNet, calibrated, naive_loss, small_net

CPU = torch.device("cpu")
POINTS = [(0.0, 0.0), (0.4, -0.3), (-0.7, 0.6)]


@pytest.fixture(scope="module")
def images():
    data = load_split("cifar10", "train", None, 64)
    return data.normalized(), data.labels


def test_pairs_follow_fuse_including_a_bn_chain_and_linear_bn():
    assert conv_bn_pairs(small_net()) == [("conv1", "bn1"), ("conv1", "bn1b"), ("conv2", "bn2"), ("fc1", "bn3")]
    with pytest.raises(NotFoldable, match="trace"):
        conv_bn_pairs(DynamicNet())
    with pytest.raises(NotFoldable, match="more than once"):
        conv_bn_pairs(SharedNet())


def test_folded_network_computes_the_model(images):
    x, _ = images
    torch.manual_seed(1)
    for model in (calibrated(small_net(), x), calibrated(torchvision.models.resnet18(num_classes=10), x[:16])):
        net = FoldedNetwork(model)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.net.modules())
        with torch.no_grad():
            torch.testing.assert_close(net(x[:16]), model(x[:16]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls, folds", [(small_net, True), (DynamicNet, False), (SharedNet, False)])
@pytest.mark.parametrize("include_biasbn", [False, True])
def test_folded_unfolded_and_naive_agree(cls, folds, include_biasbn, images):
    x, y = images
    torch.manual_seed(0)
    model = calibrated(cls(), x)
    dirs = random_directions(model, 2, seed=7, include_biasbn=include_biasbn)
    folded = SurfaceEngine(model, dirs, x, y, CPU, fold_bn=True)
    plain = SurfaceEngine(model, dirs, x, y, CPU, fold_bn=False)
    assert folded.folded is folds and plain.folded is False
    for c in POINTS:
        lf, af = folded.point(c)
        lp, ap = plain.point(c)
        assert lf == pytest.approx(lp, rel=1e-5, abs=1e-6) and af == ap, c
        assert lp == pytest.approx(naive_loss(model, dirs, c, x, y), rel=1e-5), c


def test_vmapped_points_of_a_folded_foreign_model_equal_per_point(images):
    x, y = images
    model = calibrated(small_net(), x)
    dirs = random_directions(model, 2, seed=3, include_biasbn=True)
    one = SurfaceEngine(model, dirs, x, y, CPU, points_per_forward=1).points(POINTS)
    many = SurfaceEngine(model, dirs, x, y, CPU, points_per_forward=3).points(POINTS)
    for (l1, a1), (l3, a3) in zip(one, many):
        assert l3 == pytest.approx(l1, rel=1e-5) and a3 == a1
