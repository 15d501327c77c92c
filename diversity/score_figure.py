"""Seaborn plot of per-run scores with the computed 99% intervals (never seaborn's bootstrap)."""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from diversity.stats import Summary
from training.store.files import atomic_write


def plot_scores(per_run: dict[str, Sequence[float]], summaries: Sequence[Summary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    methods = [s.method for s in summaries]
    data = {"method": [m for m in methods for _ in per_run[m]], "score": [v for m in methods for v in per_run[m]]}
    width = max(6.0, 1.6 + 1.3 * len(methods))  # one group still leaves room for the title and the legend
    fig, ax = plt.subplots(figsize=(width, 4.6))
    sns.stripplot(data=data, x="method", y="score", order=methods, ax=ax, color="0.25", size=6, jitter=0.12, zorder=3)
    xs = range(len(methods))
    ax.errorbar([x - 0.18 for x in xs], [s.mean for s in summaries], yerr=[s.ci99_z for s in summaries], fmt="o",
                color="tab:blue", capsize=4, label="mean ± 99% (z = 2.576, Table 6)")
    ax.errorbar([x + 0.18 for x in xs], [s.mean for s in summaries], yerr=[s.ci99_t for s in summaries], fmt="s",
                color="tab:orange", capsize=4, label="mean ± 99% (Student t)")
    # every point and both intervals inside the axes, with a margin
    ends = [v for m in methods for v in per_run[m]] + [s.mean + sign * ci for s in summaries
                                                       for ci in (s.ci99_z, s.ci99_t) for sign in (-1, 1)]
    ends = [v for v in ends if math.isfinite(v)]
    pad = 0.06 * ((max(ends) - min(ends)) or 1.0)
    ax.set_ylim(min(ends) - pad, max(ends) + pad)
    ax.set_xlim(-0.5, len(methods) - 0.5)
    ax.set_title(textwrap.fill(title, width=int(width * 13)), fontsize=9)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)  # below the axes
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight"))
    plt.close(fig)
