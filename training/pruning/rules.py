"""A trained checkpoint -> a pruned schema-v1 checkpoint (docs/reference.md "Pruning as the reference code ran it"), the
library behind ``python -m training.prune``.

The pruned checkpoint's ``arch`` rebuilds the smaller network (``block_widths`` / ``cfg``), so
``training.store.checkpoint.load_model``, landscape and diversity load it as any other. It keeps the source's ``method``
(whose teacher trained it), ``config`` (dataset, normalization) and ``epoch``, drops what belonged to the source's
optimisation (optimizer, scheduler, feature-KD regressor), and adds ``pruning``: source path and sha256, rule,
remaining ratios (and preset / skip list), parameter and MAC counts before and after, the source's metrics.
Weight-level pruning stores plain weights with zeros (same arch); ``params_after`` then counts the weights that
are not pruned, and the MACs stay those of the dense network.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from training.errors import UserError
from training.pruning.structured import count_params_macs, l1_filter_prune, l1_preset, network_slimming_prune
from training.pruning.weights import conv_sparsity, finalize_weight_masks, magnitude_prune
from training.store.checkpoint import load_checkpoint, model_from_checkpoint
from training.store.files import provenance, sha256_file

RULES = {
    "l1": "L1-norm filter pruning (Li et al. 2017): per-stage remaining ratios inside ResNet residual branches",
    "slimming": "network slimming (Liu et al. 2017): one global |gamma| threshold; train with --slim-s first",
    "weight": "weight-level magnitude pruning (Han et al. 2015): one global threshold over all conv weights",
}


def _single(rule: str, remaining: Sequence[float], preset: str | None) -> float:
    if preset is not None:
        raise UserError(f"--preset applies to --rule l1 only; pass --remaining R for --rule {rule}")
    if len(remaining) != 1:
        raise UserError(f"--rule {rule} takes one global remaining ratio, got {len(remaining)}; pass --remaining R")
    return float(remaining[0])


def prune_model(model: nn.Module, arch: dict[str, Any], rule: str, remaining: Sequence[float] = (),
                preset: str | None = None, skip_preset: str | None = None,
                ) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(pruned model with plain weights, its arch, {rule, remaining, preset, skip_preset, skip}) for one of ``RULES``.
    l1 takes one ratio for all three stages, three per-stage ratios, or Li et al.'s ``preset`` A/B; with
    ``remaining``, ``skip_preset`` A/B leaves whole the layers that preset skips (its skip list, other ratios)."""
    if rule not in RULES:
        raise UserError(f"unknown pruning rule {rule!r}; choose one of: {', '.join(RULES)}")
    if skip_preset is not None and (rule != "l1" or preset is not None):
        raise UserError("--skip takes a preset's skip list for --rule l1 --remaining R R R; drop it here "
                        "(--preset brings its own skip list)")
    detail: dict[str, Any] = {"rule": rule, "preset": preset, "skip": [], "requested": [float(r) for r in remaining]}
    if skip_preset is not None:
        detail["skip_preset"] = skip_preset  # only then, so records made without it keep their keys
    if rule == "l1":
        if preset is not None:
            if remaining:
                raise UserError("--preset sets the ratios itself; pass either --preset or --remaining, not both")
            ratios, skip = l1_preset(arch["name"], preset)
        elif len(remaining) in (1, 3):
            ratios = tuple(remaining) * (3 // len(remaining))
            skip = l1_preset(arch["name"], skip_preset)[1] if skip_preset else ()
        else:
            raise UserError(f"--rule l1 takes 1 or 3 (per-stage) remaining ratios, got {len(remaining)}")
        pruned, new_arch = l1_filter_prune(model, arch, ratios, skip)
        detail.update(remaining=[float(r) for r in ratios], skip=list(skip))
    elif rule == "slimming":
        r = _single(rule, remaining, preset)
        pruned, new_arch = network_slimming_prune(model, arch, r)
        detail["remaining"] = [r]
    else:
        r = _single(rule, remaining, preset)
        pruned, new_arch = magnitude_prune(model, arch, r)
        finalize_weight_masks(pruned)
        detail["remaining"] = [r]
    return pruned.eval(), new_arch, detail


def empty_layers(model: nn.Module) -> list[str]:
    """The conv and linear layers of ``model`` left without a single non-zero weight (a degenerate network: every
    path through such a layer carries only its bias, whatever the input)."""
    return [name for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not bool(m.weight.detach().ne(0).any())]


def prune_checkpoint(path: str | Path, rule: str, remaining: Sequence[float] = (), preset: str | None = None,
                     skip_preset: str | None = None, force: bool = False) -> dict[str, Any]:
    """The pruned schema-v1 checkpoint (a dict for ``save_checkpoint``) of the checkpoint at ``path``. A pruning
    that leaves a layer without weights (``empty_layers``; e.g. --rule weight at --remaining 1e-9) is refused
    unless ``force``."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path)
    pruned, new_arch, detail = prune_model(model, dict(ckpt["arch"]), rule, remaining, preset, skip_preset)
    empty = empty_layers(pruned)
    if empty and not force:
        more = f" and {len(empty) - 2} more" if len(empty) > 2 else ""
        raise UserError(f"--rule {rule} at remaining {' '.join(f'{r:g}' for r in detail['remaining'])} leaves "
                        f"{', '.join(empty[:2])}{more} without a single weight (a degenerate network); keep a "
                        "larger --remaining, or pass --force to write it anyway")
    params_before, macs_before = count_params_macs(model)
    params_after, macs_after = count_params_macs(pruned)
    if rule == "weight":
        conv_weights = sum(m.weight.numel() for m in pruned.modules() if isinstance(m, nn.Conv2d))
        params_after -= round(conv_sparsity(pruned) * conv_weights)
    pruning = {"source": str(path), "source_sha256": sha256_file(path), **detail,
               "params_before": params_before, "params_after": params_after,
               "macs_before": macs_before, "macs_after": macs_after,
               "source_arch": dict(ckpt["arch"]), "source_metrics": dict(ckpt.get("metrics") or {}),
               **({"empty_layers": empty} if empty else {})}
    return {"arch": new_arch, "model": pruned.state_dict(), "method": dict(ckpt["method"]), "aux": {},
            "epoch": ckpt["epoch"], "step": ckpt.get("step", 0), "optimizer": {}, "scheduler": {}, "scaler": {},
            "rng": {}, "config": ckpt["config"], "metrics": {}, "provenance": provenance("cpu"), "pruning": pruning}


def describe(pruning: dict[str, Any]) -> list[str]:
    """Human-readable lines of a checkpoint's ``pruning`` record (what the CLI prints)."""
    def change(a: int, b: int) -> str:
        return f"{a:,} -> {b:,} ({100.0 * (b - a) / a:+.1f}%)"

    ratios = " ".join(f"{r:g}" for r in pruning["remaining"])
    which = pruning.get("preset") or pruning.get("skip_preset")
    extra = f", preset {which}, skip {pruning['skip']}" if which else ""
    return [f"source {pruning['source']} sha256 {pruning['source_sha256']}",
            f"rule {pruning['rule']}, remaining {ratios}{extra}",
            f"params {change(pruning['params_before'], pruning['params_after'])}",
            f"MACs {change(pruning['macs_before'], pruning['macs_after'])}",
            *([f"warning: layers without a single weight (--force): {', '.join(pruning['empty_layers'])}"]
              if pruning.get("empty_layers") else [])]
