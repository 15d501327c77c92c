"""Packages only the full study needs (the ``study`` extra: Torch-Pruning, submitit, TensorBoard).

They are imported where they are used, never at module level, so training, surfaces, NASWOT and
``bench/gpu_check.py`` run on a machine that has only torch and the core dependencies. A missing one is one
``UserError`` line naming the install command.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from training.errors import UserError

STUDY_EXTRA = "pip install 'orthokd[study]'"


def require(module: str, package: str, purpose: str) -> ModuleType:
    """``import module`` (which needs the distribution ``package``), or a UserError naming ``purpose`` and the
    study extra when ``package`` is not installed. Other import failures propagate unchanged (a bug, not a
    missing extra)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != package:
            raise
        raise UserError(f"{purpose} needs the package {package}, which is not installed: {STUDY_EXTRA}") from None
