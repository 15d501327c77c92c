"""Seaborn plot of per-run scores with the computed 99% intervals (never seaborn's bootstrap)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from diversity.stats import Summary
from training.checkpoint import atomic_write


def plot_scores(per_run: dict[str, Sequence[float]], summaries: Sequence[Summary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    methods = [s.method for s in summaries]
    data = {"method": [m for m in methods for _ in per_run[m]], "score": [v for m in methods for v in per_run[m]]}
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(methods), 4))
    sns.stripplot(data=data, x="method", y="score", order=methods, ax=ax, color="0.25", size=6, jitter=0.12, zorder=3)
    xs = range(len(methods))
    ax.errorbar([x - 0.18 for x in xs], [s.mean for s in summaries], yerr=[s.ci99_z for s in summaries], fmt="o",
                color="tab:blue", capsize=4, label="mean ± 99% (z = 2.576, Table 6)")
    ax.errorbar([x + 0.18 for x in xs], [s.mean for s in summaries], yerr=[s.ci99_t for s in summaries], fmt="s",
                color="tab:orange", capsize=4, label="mean ± 99% (Student t)")
    ax.set_title(title)
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
