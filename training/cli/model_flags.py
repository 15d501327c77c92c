"""The flags of a model from outside orthokd (--model, --model-kwargs, --weights, --transform, --resize, --crop,
--mean, --std), shared by the analysis CLIs (landscape.plot, diversity.score)."""
from __future__ import annotations

import argparse
import json
from typing import Any

from training.cli.common import PIXELS, finite_float, positive_float
from training.errors import UserError
from training.external.models import KINDS


def json_object(text: str) -> dict[str, Any]:
    """argparse type of --model-kwargs: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object such as '{{\"num_classes\": 10}}'")
    return value


def add_model_flags(p: argparse.ArgumentParser, *, weights: bool = True, transform: bool = True) -> None:
    """The flags of a model from outside orthokd and of its input transform (shared by the analysis CLIs)."""
    g = p.add_argument_group("a model from outside orthokd (instead of an orthokd checkpoint)")
    g.add_argument("--model", metavar="SPEC", default=None,
                   help=f"the model to analyse: {KINDS} (any importable callable returning an nn.Module)")
    g.add_argument("--model-kwargs", type=json_object, default=None, metavar="JSON",
                   help="keyword arguments of the model factory, a JSON object, e.g. '{\"num_classes\": 10}'")
    if weights:
        g.add_argument("--weights", default=None, metavar="FILE",
                       help="weights for --model: a state_dict file (torch.load weights_only; a state_dict/model key "
                            "and module./_orig_mod. prefixes are handled) [the factory's own initialization]")
    if transform:
        g.add_argument("--transform", default=None, metavar="torchvision:WEIGHTS",
                       help="input transform of --model: a torchvision weights' own inference transforms, e.g. "
                            "torchvision:ResNet18_Weights.IMAGENET1K_V1 [CIFAR: the dataset's normalization]")
    g.add_argument("--resize", type=PIXELS, default=None, metavar="PX",
                   help="with --model: resize the shorter image side to PX pixels first")
    g.add_argument("--crop", type=PIXELS, default=None, metavar="PX", help="with --model: centre crop PX x PX")
    g.add_argument("--mean", type=finite_float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="with --model: normalize (x - mean) / std, x in [0, 1] (needs --std)")
    g.add_argument("--std", type=positive_float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="with --model: per-channel std of the normalization, each > 0 (needs --mean)")


MODEL_FLAGS = {"--model-kwargs": "model_kwargs", "--weights": "weights", "--resize": "resize", "--crop": "crop",
               "--mean": "mean", "--std": "std"}


def refuse_model_flags_without_model(flags: dict[str, Any]) -> None:
    """The --model companions (``flags``: the parsed flags by dest) mean nothing for an orthokd checkpoint:
    refuse them there (--transform only with a torchvision:WEIGHTS value)."""
    if flags.get("model") is not None:
        return
    given = [f for f, dest in MODEL_FLAGS.items() if flags.get(dest)]
    given += ["--transform"] if str(flags.get("transform") or "").startswith("torchvision:") else []
    if given:
        raise UserError(f"{given[0]} applies to --model only; orthokd checkpoints carry their own architecture, "
                        "weights and normalization")
