"""What the analyses need from any classifier (landscape.surface / sharpness, diversity.naswot / score_models):
logits of shape (N, classes) for N inputs. ``logits_model`` turns a model whose forward returns a mapping
(Hugging Face style ``{"logits": ...}``) into one that returns ``out[output_key]``; ``check_model_inputs`` runs one
forward on two inputs and turns what can go wrong there into one UserError line (a ValueError)."""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from training.errors import UserError


def logits_model(model: nn.Module, output_key: str = "logits") -> nn.Module:
    """A copy of ``model`` whose class's forward returns ``forward(...)[output_key]`` when the original returns a
    mapping (a subclass, so parameter names, torch.fx tracing and deep copies stay as they are)."""
    cls = type(model)

    def forward(self, *args, **kwargs):
        return _pick(cls.forward(self, *args, **kwargs), output_key)

    wrapped = copy.deepcopy(model)
    wrapped.__class__ = type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})
    return wrapped


def _pick(out, output_key: str):
    """``out[output_key]`` of a mapping (one UserError line when the key is missing), any other output as it is."""
    if not isinstance(out, Mapping):
        return out
    if output_key not in out:
        raise UserError(f"the model returns a mapping with keys {sorted(map(str, out))} but no {output_key!r}; "
                        "pass output_key=<the key of its logits>")
    return out[output_key]


def check_model_inputs(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                       output_key: str = "logits") -> nn.Module:
    """Run ``model`` (eval mode, no grad; every module's mode is restored) on the first two of ``images`` and return the
    model
    the analyses should use (``logits_model`` when the output is a mapping). Refused with one UserError line:
    inputs that are not a float tensor of at least 2 rows, a forward that fails on them (the first line of its
    error, with the input shape), an output that is not (N, classes) logits, labels beyond the classes."""
    if not torch.is_tensor(images) or images.dim() < 2 or images.shape[0] < 2:
        got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise UserError(f"the inputs must be a tensor (N, ...) of at least 2 inputs, got {got}")
    sample = images[:2].float()
    modes = [(m, m.training) for m in model.modules()]  # restored one by one: a model may mix modes
    try:
        with torch.no_grad():
            out = model.eval()(sample.to(next(model.parameters(), sample).device))
    except UserError:
        raise
    except Exception as e:  # the user's forward may raise anything on inputs it was not built for
        first = str(e).splitlines()[0][:160] if str(e) else ""
        raise UserError(f"the model fails on inputs of shape {tuple(sample.shape)} ({type(e).__name__}: {first}); "
                        "give it inputs of the size and layout it takes (e.g. its weights' transforms())") from None
    finally:
        for m, training in modes:
            m.training = training
    if isinstance(out, Mapping):
        model, out = logits_model(model, output_key), _pick(out, output_key)
    if not torch.is_tensor(out) or out.dim() != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise UserError(f"the model returns {shape} for 2 inputs; the analyses need logits of shape (2, classes): "
                        "give a model whose forward returns logits, or output_key= for a mapping")
    if labels is not None and len(labels) and int(labels.max()) >= out.shape[1]:
        raise UserError(f"the labels reach class {int(labels.max())} but the model gives {out.shape[1]} logits; "
                        "build it with as many outputs as the data has classes (e.g. num_classes=...)")
    return model
