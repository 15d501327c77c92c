"""The paper's surplus of KD over pruning (Tables 1-3, docs/reference.md "Pruning as the reference code ran it"):

    Surplus = (Self-Distill - Finetuned) - (Unpruned KD - Unpruned Scratch)

in accuracy points: what KD adds to a pruned network beyond what it adds to the unpruned one. Positive = KD and
pruning compound. From schedule directories (training.engine.schedules): Finetuned and Self-Distill are the fine-tuned
accuracies of a ``finetuned`` and a ``self-distill`` schedule; Unpruned Scratch / KD are their initial phases.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from training.engine.schedules import SUMMARY
from training.errors import UserError


def surplus(self_distill: float, finetuned: float, unpruned_kd: float, unpruned_scratch: float) -> float:
    """(self_distill - finetuned) - (unpruned_kd - unpruned_scratch), accuracies in %."""
    values = (self_distill, finetuned, unpruned_kd, unpruned_scratch)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise UserError(f"surplus needs four finite accuracies, got {values}; finish the schedules first")
    return (self_distill - finetuned) - (unpruned_kd - unpruned_scratch)


def _summary(run_dir: str | Path, schedule: str) -> dict:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        raise UserError(f"{path} not found: run python -m training.prune_schedule --schedule {schedule} there first")
    summary = json.loads(path.read_text())
    if summary["schedule"] != schedule:
        raise UserError(f"{run_dir} holds a {summary['schedule']} schedule, not {schedule}; pass the {schedule} "
                        "directory")
    return summary


def schedule_surplus(finetuned_dir: str | Path, self_distill_dir: str | Path) -> float:
    """Surplus from a ``finetuned`` and a ``self-distill`` schedule directory (same model, rule and ratios)."""
    ft, sd = _summary(finetuned_dir, "finetuned"), _summary(self_distill_dir, "self-distill")
    if (ft["rule"], ft["remaining"], ft["preset"]) != (sd["rule"], sd["remaining"], sd["preset"]):
        raise UserError(f"{finetuned_dir} and {self_distill_dir} were pruned differently; compare schedules of one "
                        "rule and ratio")
    return surplus(sd["finetune"]["test_acc"], ft["finetune"]["test_acc"], sd["initial"]["test_acc"],
                   ft["initial"]["test_acc"])
