"""The registry of architectures: ``MODELS`` maps a name to its builder (one module per family: resnet.py, slimming.py,
pyramidnet.py); ``build_model`` builds one by name, as a checkpoint's ``arch`` records it."""
from __future__ import annotations

from typing import Callable

from torch import nn

from training.errors import UserError
from training.models import pyramidnet, slimming
from training.models.resnet import resnet_builder

# resnet8 / resnet14 are tiny members of the same family for tests and demos.
MODELS: dict[str, Callable[..., nn.Module]] = {
    f"resnet{d}": resnet_builder(d) for d in (8, 14, 20, 32, 44, 56, 110)
}
MODELS.update(vgg19=slimming.vgg19, densenet40=slimming.densenet40,
              vgg_tiny=slimming.vgg_tiny, densenet_tiny=slimming.densenet_tiny)
# Network slimming's pre-activation bottleneck ResNet (Table 2's ResNet-56 as its reference ran it) and a toy one.
MODELS.update(preresnet56=slimming.preresnet56, preresnet_tiny=slimming.preresnet_tiny)
MODELS.update(pyramidnet.PYRAMIDNETS)  # PyramidNet-110 a64, -200 a240/a300, a tiny one (training/models/pyramidnet.py)


def training_kwargs(name: str, width: int = 16, shortcut: str = "pad") -> dict:
    """The constructor kwargs that ``--width`` / ``--shortcut`` give ``name``: both for the ResNets; the other
    families have neither, so a non-default value for them is refused rather than ignored."""
    if name.startswith("resnet"):
        return {"width": width, "shortcut": shortcut}
    if (width, shortcut) != (16, "pad"):
        raise UserError(f"--width and --shortcut apply to the ResNets only; drop them for --model {name}")
    return {}


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered architecture; the checkpoint stores ``name`` and ``kwargs`` as ``arch``."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name](num_classes, **kwargs)


