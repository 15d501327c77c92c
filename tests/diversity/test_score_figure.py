"""scores.png with one group: the title wraps, the legend sits below the axes, and every run and
both 99% intervals lie inside the axes."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from diversity.score_figure import plot_scores
from diversity.stats import summarize_groups


def test_one_group_is_not_cramped(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to measure it
    one = {"torchvision:resnet18": [-65.30, -65.38, -66.1]}
    summary = summarize_groups(one, "torchvision:resnet18")
    title = "NASWOT v1 (Table 6 scale); " + "a long caption naming data, model and epochs; " * 4
    plot_scores(one, summary, tmp_path / "scores.png", title)
    (fig,) = figures
    ax = fig.axes[0]
    s = summary[0]
    low, high = ax.get_ylim()
    assert low < s.mean - s.ci99_t and s.mean + s.ci99_t < high and low < min(one["torchvision:resnet18"])
    assert ax.get_xlim() == (-0.5, 0.5) and fig.get_figwidth() >= 6.0
    assert ax.title.get_text().count("\n") >= 1  # wrapped, not clipped
    fig.canvas.draw()
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.y1 <= axes_box.y0  # below the axes: covers no tick or bar
    assert (tmp_path / "scores.png").stat().st_size > 5000
