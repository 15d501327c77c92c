"""Console scripts (pyproject.toml [project.scripts]): ``orthokd-train`` ... ``orthokd-study`` run the same
``main`` as ``python -m training.train`` ... ``python -m figures.study``, with the same one-line errors and exit
codes (training.cli.common.run_cli). Each command's module is imported only when that command runs."""
from __future__ import annotations

import importlib
import sys

from orthokd import ShadowedPackageError, check_packages


def _run(module: str) -> int:
    try:
        check_packages()
    except ShadowedPackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from training.cli.common import run_cli

    return run_cli(importlib.import_module(module).main)


def train() -> int:
    """orthokd-train = python -m training.train"""
    return _run("training.train")


def prune() -> int:
    """orthokd-prune = python -m training.prune"""
    return _run("training.prune")


def prune_schedule() -> int:
    """orthokd-prune-schedule = python -m training.prune_schedule"""
    return _run("training.prune_schedule")


def landscape_plot() -> int:
    """orthokd-landscape = python -m landscape.plot"""
    return _run("landscape.plot")


def diversity_score() -> int:
    """orthokd-diversity = python -m diversity.score"""
    return _run("diversity.score")


def figures_make() -> int:
    """orthokd-figures = python -m figures.make"""
    return _run("figures.make")


def figures_study() -> int:
    """orthokd-study = python -m figures.study"""
    return _run("figures.study")
