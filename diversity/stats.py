"""Table 6's statistics and more, with scipy.stats.

For n scores: mean; std with ddof = 1; ErrMargin = std / sqrt(n); the 99% half-width as Table 6 gives it,
2.576 * ErrMargin (normal quantile); the Student-t half-width t_{0.995, n-1} * ErrMargin (4.604 for n = 5);
and Welch's t-test p-value of each method against a reference method (scratch)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

Z99 = 2.576  # Table 6's multiplier (two-sided 99% normal quantile, rounded as the paper does)


@dataclass(frozen=True)
class Summary:
    method: str
    n: int
    mean: float
    std: float  # ddof = 1
    err_margin: float  # std / sqrt(n)
    ci99_z: float  # 2.576 * err_margin (Table 6)
    ci99_t: float  # t_{0.995, n-1} * err_margin
    welch_p: float  # Welch's t-test against the reference method; NaN for the reference itself
    reference: str

    def to_json(self) -> dict:
        return asdict(self)


def summarize(method: str, scores: Sequence[float], reference_scores: Sequence[float] | None = None,
              reference: str = "scratch") -> Summary:
    x = np.asarray(scores, dtype=np.float64)
    n = len(x)
    std = float(np.std(x, ddof=1)) if n > 1 else math.nan
    err = std / math.sqrt(n) if n > 1 else math.nan
    t = float(stats.t.ppf(0.995, n - 1)) if n > 1 else math.nan
    p = math.nan
    if reference_scores is not None and method != reference and n > 1 and len(reference_scores) > 1:
        p = float(stats.ttest_ind(x, np.asarray(reference_scores, dtype=np.float64), equal_var=False).pvalue)
    return Summary(method, n, float(x.mean()), std, err, Z99 * err, t * err, p, reference)


def summarize_groups(scores: dict[str, Sequence[float]], reference: str = "scratch") -> list[Summary]:
    ref = scores.get(reference)
    return [summarize(m, s, ref, reference) for m, s in scores.items()]
