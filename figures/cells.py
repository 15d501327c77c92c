"""Table cells over seeds: 'mean ± std (+gain)', the sample std (n - 1) only with several seeds, the gain as the mean
of the per-seed differences to a baseline (paired by seed), and the numbers behind the text for the JSON; the paper's
cells as printed beside them, with footnote markers where the paper's arithmetic disagrees with itself."""
from __future__ import annotations

import statistics
from typing import Sequence

from figures.paper import Published


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


def paper_text(published: Published | None, notes: list[str]) -> str:
    """The paper's cell as printed ('73.76 (+2.53)'; '' where the paper prints none). A number the paper's own
    arithmetic contradicts gets the marker '[k]' of its footnote, which is added to ``notes`` once."""
    if published is None:
        return ""
    if not published.note:
        return published.text()
    line = f"{published.row}, {published.column}: {published.note}"
    if line not in notes:
        notes.append(line)
    return f"{published.text()} [{notes.index(line) + 1}]"


def paper_numbers(published: Published) -> dict:
    """The paper's cell for the JSON and CSV: value, printed gain (or None) and note."""
    return {"value": published.value, "gain": published.gain, "note": published.note}


def numbered(notes: Sequence[str]) -> list[str]:
    """The footnotes of paper_text's markers: '[1] ...', '[2] ...'."""
    return [f"[{i + 1}] {n}" for i, n in enumerate(notes)]
