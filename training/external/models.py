"""Models from outside orthokd, for the analyses (landscape.plot, diversity.score and their Python API).

A model spec is ``torchvision:NAME`` (torchvision.models.get_model), ``timm:NAME`` (timm.create_model, when
timm is installed) or ``package.module:factory`` (any importable callable returning an nn.Module); keyword
arguments come from ``--model-kwargs JSON``. Weights come from a file read with
``torch.load(..., weights_only=True)`` (argparse.Namespace allowed, which timm's and torchvision's training
scripts store as ``args``): a state_dict, or a dict holding one under ``state_dict`` (timm, Lightning),
``model`` (torchvision's references, orthokd checkpoints) or ``model_state_dict``; the wrapper prefixes
``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) are stripped; the load is strict. The
analyses need logits: ``check_logits`` refuses a model whose output for N images is not (N, classes).
``add_model_flags`` and ``refuse_model_flags_without_model`` are the flags those CLIs share.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
from typing import Any

import torch
from torch import nn

from training.errors import UserError
from training.store.checkpoint import check_finite, load_weights_only

STATE_KEYS = ("state_dict", "model", "model_state_dict")  # where checkpoints keep the weights, tried in order
KINDS = "torchvision:NAME, timm:NAME or package.module:factory"


def parse_spec(spec: str) -> tuple[str, str]:
    """(source, name) of ``torchvision:NAME``, ``timm:NAME`` or ``package.module:factory``."""
    source, sep, name = spec.partition(":")
    if not sep or not source or not name:
        raise UserError(f"--model {spec!r}: use {KINDS}")
    return source, name


def build_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """The model a spec names, built with ``kwargs``, in eval mode on the CPU."""
    source, name = parse_spec(spec)
    kwargs = kwargs or {}
    if source == "torchvision":
        import torchvision

        if name.lower() not in torchvision.models.list_models():
            raise UserError(f"--model {spec}: torchvision has no model {name!r}; see torchvision.models.list_models()")
        factory = lambda **kw: torchvision.models.get_model(name, **kw)  # noqa: E731
    elif source == "timm":
        try:
            import timm
        except ImportError:
            raise UserError(f"--model {spec} needs timm, which is not installed: pip install timm") from None
        if not timm.is_model(name):
            raise UserError(f"--model {spec}: timm has no model {name!r}; see timm.list_models()")
        factory = lambda **kw: timm.create_model(name, **kw)  # noqa: E731
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as e:
            raise UserError(
                f"--model {spec}: cannot import {source} ({e}); put it on PYTHONPATH or install it"
            ) from None
        factory = getattr(module, name, None)
        if not callable(factory):
            raise UserError(f"--model {spec}: {source} has no callable {name!r}; name a function or class that "
                            "returns an nn.Module")
    model = _call_factory(factory, spec, kwargs)
    if not isinstance(model, nn.Module):
        raise UserError(f"--model {spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _call_factory(factory: Any, spec: str, kwargs: dict[str, Any]) -> Any:
    """``factory(**kwargs)``; any exception it raises (a keyword it does not take, a negative class count, weights
    that conflict with num_classes, a download attempted offline, ...) is one UserError naming the factory, the
    keywords and the cause. Its stderr (download progress) is held back and shown only when it succeeds."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            model = factory(**kwargs)
    except Exception as e:  # a user's or a library's factory may raise anything
        cause = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        if isinstance(e, TypeError):  # the usual case: a keyword the factory does not have
            raise UserError(f"--model {spec} does not take --model-kwargs {json.dumps(kwargs)} ({cause}); fix the "
                            "keywords") from None
        raise UserError(f"--model {spec} failed with --model-kwargs {json.dumps(kwargs)} ({cause}); fix the keywords "
                        "(or, for pretrained weights, download them while online)") from None
    sys.stderr.write(held.getvalue())
    return model


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with ``_orig_mod.`` removed wherever it occurs in a name (compiled submodules too) and a
    leading ``module.`` removed while every name has it."""
    state = {k.replace("_orig_mod.", ""): v for k, v in state.items()}
    while state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state_dict in a weights file (module docstring: layouts and prefixes)."""
    if not os.path.isfile(path):
        raise UserError(f"--weights {path} not found; check the path")
    try:
        obj = load_weights_only(path, (argparse.Namespace,))
    except Exception as e:  # torch raises many types for foreign or damaged files
        raise UserError(f"cannot read --weights {path} with torch.load(weights_only=True) ({type(e).__name__}); "
                        "save the weights with torch.save(model.state_dict(), PATH)") from None
    if not _is_state_dict(obj) and isinstance(obj, dict):
        obj = next((obj[k] for k in STATE_KEYS if _is_state_dict(obj.get(k))), obj)
    if not _is_state_dict(obj):
        raise UserError(f"--weights {path} holds no state_dict (a dict of tensors, or one under "
                        f"{', '.join(STATE_KEYS)}); save it with torch.save(model.state_dict(), PATH)")
    return strip_prefixes(obj)


def load_weights(model: nn.Module, path: str | os.PathLike, spec: str = "the model") -> nn.Module:
    """``model`` with the weights of ``path`` loaded strictly; refuses weights that do not fit or are not finite."""
    state = read_state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        known = ("size mismatch", "Missing key", "Unexpected key")
        detail = next((ln for ln in lines if ln.startswith(known)), lines[0])
        if detail.startswith(("Missing key", "Unexpected key")):  # name the first two of possibly hundreds
            keys = detail.split(", ")
            detail = ", ".join(keys[:2]) + (f", ... ({len(keys)} in all)" if len(keys) > 2 else "")
        raise UserError(f"--weights {path} does not fit {spec} ({detail[:200]}); pass the weights of this "
                        "architecture (and its --model-kwargs, e.g. num_classes)") from None
    check_finite(model.state_dict(), path)
    return model.eval()


def check_logits(model: nn.Module, sample: torch.Tensor, num_classes: int, spec: str = "the model") -> None:
    """Refuse a model whose output for ``sample`` (N inputs) is not a tensor of shape (N, num_classes)."""
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(sample)
    except Exception as e:  # the user's forward may raise anything on inputs it was not built for
        raise UserError(f"--model {spec} fails on inputs of shape {tuple(sample.shape)} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:120] if str(e) else ''}); give it inputs it takes (--transform, "
                        "--resize, --crop)") from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
    if shape != (sample.shape[0], num_classes):
        raise UserError(
            f"--model {spec} returns {shape} for {sample.shape[0]} inputs, but the analyses need logits of "
            f"shape ({sample.shape[0]}, {num_classes}) for this {num_classes}-class data; pass "
            f"--model-kwargs '{{\"num_classes\": {num_classes}}}' or a factory whose forward returns logits"
        )


def model_from_flags(spec: str, kwargs: dict[str, Any] | None, weights: str | None, sample: torch.Tensor,
                     num_classes: int) -> nn.Module:
    """``build_model``, then ``load_weights`` when given (the CLIs' --model, --model-kwargs, --weights), then
    ``check_logits`` on ``sample``."""
    model = build_model(spec, kwargs)
    if weights:
        load_weights(model, weights, spec)
    check_logits(model, sample, num_classes, spec)
    return model


