"""The registry of architectures: ``MODELS`` maps a name to its ``ModelSpec``, the builder (one module per family:
resnet.py, slimming.py, pyramidnet.py) with the facts that callers ask of a name (which flags apply, feature-KD
beta, slimming sparsity); ``build_model`` builds one by name, as a checkpoint's ``arch`` records it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from training.errors import UserError
from training.models import pyramidnet, slimming
from training.models.resnet import resnet_builder

RESNET_FLAGS = ("width", "shortcut")  # the constructor kwargs --width / --shortcut set, for the ResNets only


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture: ``builder(num_classes, **kwargs)`` and the facts of its family."""
    builder: Callable[..., nn.Module]
    family: str  # "resnet", "preresnet", "vgg", "densenet" or "pyramidnet"
    flags: tuple[str, ...]  # constructor kwargs the --width / --shortcut flags set (also shown in captions)
    feature_beta: float  # eq. (2) beta of feature KD (docs/reference.md "Objectives")
    slim_s: float  # Liu et al.'s default slimming sparsity s: 1e-4 for VGG, 1e-5 for the ResNets and DenseNet


def _resnet(depth: int) -> ModelSpec:
    return ModelSpec(resnet_builder(depth), "resnet", RESNET_FLAGS, 500.0, 1e-5)


def _pyramidnet(name: str, beta: float) -> ModelSpec:
    return ModelSpec(pyramidnet.PYRAMIDNETS[name], "pyramidnet", (), beta, 1e-5)


# resnet8 / resnet14 are tiny members of the same family for tests and demos.
MODELS: dict[str, ModelSpec] = {f"resnet{d}": _resnet(d) for d in (8, 14, 20, 32, 44, 56, 110)}
MODELS.update(vgg19=ModelSpec(slimming.vgg19, "vgg", (), 1500.0, 1e-4),
              densenet40=ModelSpec(slimming.densenet40, "densenet", (), 1000.0, 1e-5),
              vgg_tiny=ModelSpec(slimming.vgg_tiny, "vgg", (), 1500.0, 1e-4),
              densenet_tiny=ModelSpec(slimming.densenet_tiny, "densenet", (), 1000.0, 1e-5))
# Network slimming's pre-activation bottleneck ResNet (Table 2's ResNet-56 as its reference ran it) and a toy one.
MODELS.update(preresnet56=ModelSpec(slimming.preresnet56, "preresnet", (), 500.0, 1e-5),
              preresnet_tiny=ModelSpec(slimming.preresnet_tiny, "preresnet", (), 500.0, 1e-5))
# PyramidNet-110 a64, -200 a240/a300 (training/models/pyramidnet.py), and a toy stand-in with PyramidNet-110's beta.
MODELS.update(pyramidnet110_a64=_pyramidnet("pyramidnet110_a64", 1000.0),
              pyramidnet200_a240=_pyramidnet("pyramidnet200_a240", 2000.0),
              pyramidnet200_a300=_pyramidnet("pyramidnet200_a300", 2000.0),
              pyramidnet_tiny=_pyramidnet("pyramidnet_tiny", 1000.0))


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; an unknown name is refused with the list of known ones."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def training_kwargs(name: str, width: int = 16, shortcut: str = "pad") -> dict:
    """The constructor kwargs that ``--width`` / ``--shortcut`` give ``name`` (its spec's ``flags``); a family
    without them refuses a non-default value rather than ignoring it."""
    flags, given = model_spec(name).flags, {"width": width, "shortcut": shortcut}
    if flags:
        return {k: given[k] for k in flags}
    if (width, shortcut) != (16, "pad"):
        raise UserError(f"--width and --shortcut apply to the ResNets only; drop them for --model {name}")
    return {}


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered architecture; the checkpoint stores ``name`` and ``kwargs`` as ``arch``."""
    return model_spec(name).builder(num_classes, **kwargs)
