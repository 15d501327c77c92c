"""The model registry: every name has a ModelSpec, and each fact that callers once derived from the name's prefix
(which flags apply, feature-KD beta, slimming s, width in captions) is unchanged, checked against literal answers."""
import pytest

from figures.pruning.plan import PruneStudySpec
from training.engine.schedules import sparsity
from training.errors import UserError
from training.models.registry import MODELS, ModelSpec, build_model, training_kwargs
from training.objectives import default_feature_beta
from training.store.poolable import describe_config

RESNETS = {f"resnet{d}" for d in (8, 14, 20, 32, 44, 56, 110)}
# eq. (2) beta as the former prefix table gave it (resnet/preresnet 500, vgg 1500, densenet 1000, pyramidnet110 and
# pyramidnet_tiny 1000, pyramidnet200 2000).
BETA = {**{n: 500.0 for n in RESNETS}, "preresnet56": 500.0, "preresnet_tiny": 500.0, "vgg19": 1500.0,
        "vgg_tiny": 1500.0, "densenet40": 1000.0, "densenet_tiny": 1000.0, "pyramidnet110_a64": 1000.0,
        "pyramidnet_tiny": 1000.0, "pyramidnet200_a240": 2000.0, "pyramidnet200_a300": 2000.0}
VGGS = {"vgg19", "vgg_tiny"}  # slimming s 1e-4; every other name 1e-5


def test_every_name_has_a_spec():
    assert set(MODELS) == set(BETA)
    assert all(isinstance(spec, ModelSpec) for spec in MODELS.values())
    with pytest.raises(AttributeError):
        MODELS["resnet8"].slim_s = 0.0  # frozen


@pytest.mark.parametrize("name", sorted(BETA))
def test_former_prefix_answers_unchanged(name):
    resnet = name in RESNETS
    assert training_kwargs(name) == ({"width": 16, "shortcut": "pad"} if resnet else {})
    if resnet:
        assert training_kwargs(name, 8, "conv") == {"width": 8, "shortcut": "conv"}
    else:
        with pytest.raises(UserError, match="--width and --shortcut apply to the ResNets only"):
            training_kwargs(name, 8)
    assert default_feature_beta(name) == BETA[name]
    assert sparsity("slimming", name) == (1e-4 if name in VGGS else 1e-5) and sparsity("l1", name) == 0.0
    caption = describe_config({"model": name, "width": 8, "shortcut": "conv"})
    assert caption.startswith(f"{name} width 8;" if resnet else f"{name};")
    assert ("shortcut conv" in caption) == resnet
    base = PruneStudySpec(width=8, shortcut="conv").base(name, 0)
    assert (base.width, base.shortcut) == ((8, "conv") if resnet else (16, "pad"))


def test_unknown_names():
    with pytest.raises(UserError, match="unknown model 'resnet18'"):
        build_model("resnet18", 10)
    with pytest.raises(UserError, match="--feature-beta"):
        default_feature_beta("wideresnet28")
    assert describe_config({"model": "resnet18", "width": 8}).startswith("resnet18;")  # an unregistered name: no width
