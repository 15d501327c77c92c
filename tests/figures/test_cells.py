"""A cell's 95% Student-t interval (scipy.stats), and the best-epoch accuracy that Accuracy
values carry into the JSON beside the last-epoch value the cell shows."""
import math
import statistics

import pytest
from scipy import stats

from figures.cells import Accuracy, accuracy_caption, cell


def test_cell_shows_last_epoch_mean_std_and_t_interval_and_keeps_best():
    accs = [Accuracy(70.0, 71.0), Accuracy(71.0, 71.5), Accuracy(72.5, 72.5)]
    base = [69.0, 70.5, 70.0]
    text, nums = cell(accs, base)
    last = [70.0, 71.0, 72.5]
    t95 = stats.t.ppf(0.975, 2) * statistics.stdev(last) / math.sqrt(3)
    assert nums["mean"] == pytest.approx(statistics.fmean(last)) and nums["t95"] == pytest.approx(t95)
    assert text == f"{statistics.fmean(last):.2f} ± {statistics.stdev(last):.2f} [±{t95:.2f}] (+1.33)"
    assert nums["best_mean"] == pytest.approx(statistics.fmean([71.0, 71.5, 72.5]))
    assert nums["best_std"] == pytest.approx(statistics.stdev([71.0, 71.5, 72.5]))
    diffs = [a - b for a, b in zip(last, base)]
    assert nums["gain_t95"] == pytest.approx(stats.t.ppf(0.975, 2) * statistics.stdev(diffs) / math.sqrt(3))


def test_one_seed_and_older_records():
    text, nums = cell([Accuracy(70.0, 70.4)])
    assert text == "70.00" and "t95" not in nums and nums["best_mean"] == 70.4
    assert "best_mean" not in cell([Accuracy(70.0, None), Accuracy(71.0, 71.0)])[1]  # a run recorded before best
    assert "best_mean" not in cell([1.0, 2.0])[1]
    assert "mean ± std over 3 seeds" in accuracy_caption(3) and "Last-epoch" in accuracy_caption(1)
