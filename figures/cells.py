"""Table cells over seeds: 'mean ± std (+gain)', the sample std (n - 1) only with several seeds, the gain as the mean
of the per-seed differences to a baseline (paired by seed), and the numbers behind the text for the JSON."""
from __future__ import annotations

import statistics
from typing import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """(mean, sample std with n - 1, or None for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def cell(values: Sequence[float] | None, baseline: Sequence[float] | None = None) -> tuple[str, dict]:
    """('mean ± std (+gain)', {mean, std, n[, gain]}); ('', {}) for no values. ``baseline`` is paired with
    ``values`` by position (seed)."""
    if values is None:
        return "", {}
    mean, std = mean_std(values)
    text = f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")
    nums = {"mean": mean, "std": std, "n": len(values)}
    if baseline is not None:
        nums["gain"] = statistics.fmean(v - b for v, b in zip(values, baseline, strict=True))
        text += f" ({nums['gain']:+.2f})"
    return text, nums
