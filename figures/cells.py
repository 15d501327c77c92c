"""Table cells over seeds: 'mean ± std [±t95] (+gain)', the sample std (n - 1) and the 95% Student-t half-width
t_{0.975, n-1} * std / sqrt(n) only with several seeds, the gain as the mean of the per-seed differences to a baseline
(paired by seed), and the numbers behind the text for the JSON; the paper's cells as printed beside them, with
footnote markers where the paper's arithmetic disagrees with itself."""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from figures.paper import Published

T_LEVEL = 0.95  # confidence of the Student-t interval of a cell's mean


class Accuracy(float):
    """A run's last-epoch test accuracy (%), the value the tables show, carrying its best-epoch accuracy (``best``,
    the number the reference trainers print; None for runs recorded before it was) into the cells' JSON/CSV."""

    best: float | None

    def __new__(cls, last: float, best: float | None) -> Accuracy:
        obj = super().__new__(cls, last)
        obj.best = best
        return obj


def t_half_width(std: float, n: int, level: float = T_LEVEL) -> float:
    """Half-width of the Student-t interval of a mean of n values: t_{(1 + level)/2, n - 1} * std / sqrt(n)."""
    from scipy import stats

    return float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)


def accuracy_caption(n: int) -> str:
    """The caption's words for cells of ``n`` seeds of ``Accuracy`` values: which accuracy they show, and where the
    other one is."""
    spread = f"mean ± std over {n} seeds, in brackets the 95% Student-t half-width of the mean" if n > 1 else "one seed"
    return (f"Last-epoch test accuracy (%), {spread} (the best epoch's, which the reference trainers print, is "
            "best_mean / best_std in the JSON/CSV)")


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """(mean, sample std with n - 1, or None for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def cell(values: Sequence[float] | None, baseline: Sequence[float] | None = None) -> tuple[str, dict]:
    """('mean ± std [±t95] (+gain)', {mean, std, n[, t95][, best_mean, best_std][, gain[, gain_t95]]}); ('', {}) for no
    values. ``baseline`` is paired with ``values`` by position (seed); ``Accuracy`` values add their best-epoch
    mean and std."""
    if values is None:
        return "", {}
    mean, std = mean_std(values)
    nums = {"mean": mean, "std": std, "n": len(values)}
    text = f"{mean:.2f}"
    if std is not None:
        nums["t95"] = t_half_width(std, len(values))
        text += f" ± {std:.2f} [±{nums['t95']:.2f}]"
    best = [getattr(v, "best", None) for v in values]
    if None not in best:
        nums["best_mean"], nums["best_std"] = mean_std(best)
    if baseline is not None:
        diffs = [v - b for v, b in zip(values, baseline, strict=True)]
        nums["gain"], gain_std = mean_std(diffs)
        if gain_std is not None:
            nums["gain_t95"] = t_half_width(gain_std, len(diffs))
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
