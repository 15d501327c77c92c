"""The statistics and surface measures behind the claims (figures.report.catalogue): Student-t intervals over seeds and
their verdicts, and two summaries of a loss surface that the flatness table does not give: the basin's width and the
number of local minima near the main one.

Intervals (level L, n values):

    paired:  d_s = x_s - y_s per seed s, interval  mean(d) +- t_{(1+L)/2, n-1} * sd(d) / sqrt(n)
    Welch:   mean(x) - mean(y) +- t_{(1+L)/2, nu} * sqrt(sx^2/nx + sy^2/ny), nu by Welch-Satterthwaite

Verdict of a claim "the quantity is > 0" (or "< 0"): supported when the whole interval lies on the claimed side,
contradicted when it lies on the other side, inconclusive otherwise or with fewer than two values (no interval).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, stats

from figures.cells import t_half_width
from landscape.record import Surface

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "supported", "contradicted", "inconclusive", "not run"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)


@dataclass(frozen=True)
class Estimate:
    """A measured quantity: its mean, the interval at ``level`` (None without one), the values it came from."""

    mean: float
    low: float | None
    high: float | None
    n: int
    level: float
    design: str  # "paired over seeds", "Welch over runs", "one value"
    values: tuple[float, ...] = field(default=())

    def verdict(self, sign: int) -> str:
        """``sign`` +1: the claim says the quantity is > 0; -1: < 0."""
        if self.low is None or self.high is None or math.isnan(self.low):
            return INCONCLUSIVE
        low, high = (self.low, self.high) if sign > 0 else (-self.high, -self.low)
        if low > 0:
            return SUPPORTED
        if high < 0:
            return CONTRADICTED
        return INCONCLUSIVE

    def text(self, digits: int = 2) -> str:
        """'mean [low, high]' or 'mean (n = 1, no interval)'."""
        if self.low is None or self.high is None:
            return f"{self.mean:+.{digits}f} (n = {self.n}, no interval)"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def to_json(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "level": self.level,
                "design": self.design, "values": list(self.values)}


def paired(diffs: Sequence[float], level: float) -> Estimate:
    """Mean of per-seed differences with its paired Student-t interval (t_{(1+level)/2, n-1} sd / sqrt(n));
    no interval for one difference."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return Estimate(float(d.mean()), None, None, int(d.size), level, "one value", tuple(d.tolist()))
    mean = float(d.mean())
    half = t_half_width(float(d.std(ddof=1)), int(d.size), level)
    return Estimate(mean, mean - half, mean + half, int(d.size), level, f"paired over {d.size} seeds",
                    tuple(d.tolist()))


def welch(x: Sequence[float], y: Sequence[float], level: float) -> Estimate:
    """mean(x) - mean(y) with the Welch t interval (unequal variances, Welch-Satterthwaite degrees of freedom);
    no interval when either side has fewer than two values."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mean = float(a.mean() - b.mean())
    n = int(min(a.size, b.size))
    if n < 2:
        return Estimate(mean, None, None, n, level, "one value")
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence_level=level)
    return Estimate(mean, float(ci.low), float(ci.high), n, level, f"Welch over {a.size} and {b.size} runs")


def combine(verdicts: Sequence[str]) -> str:
    """A claim made of parts ("at every LR step", "each step of an order"): supported when every part is,
    contradicted when any part is, not run when no part ran, inconclusive otherwise."""
    if not verdicts or all(v == NOT_RUN for v in verdicts):
        return NOT_RUN
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return INCONCLUSIVE


def basin_width(s: Surface, delta: float) -> float:
    """Equivalent diameter of the basin: 2 sqrt(A / pi), A = area (in direction units squared: grid points x
    cell x x cell y) of the 4-connected region of {p : L(p) <= L(c) + delta} that holds the centre c (the region
    landscape.sharpness.flatness counts). A 1-D curve: the length of the run of such points through c."""
    loss = np.where(np.isfinite(s.loss), s.loss, np.inf)
    c = s.centre_index()
    regions, _ = ndimage.label(loss <= loss[c] + delta)
    points = int(np.count_nonzero(regions == regions[c])) if regions[c] else 0
    dx = float(np.ptp(s.xcoords)) / max(len(s.xcoords) - 1, 1)
    if s.is_1d:
        return points * dx
    dy = float(np.ptp(s.ycoords)) / max(len(s.ycoords) - 1, 1)
    return 2.0 * math.sqrt(points * dx * dy / math.pi)


def local_minima(s: Surface, delta: float) -> int:
    """Number of grid points that are local minima, L(p) < L(q) for each of the up to 8 neighbours q (points on the
    grid's edge compared with the neighbours they have), and lie at most ``delta`` above the centre: L(p) <= L(c) +
    delta (delta = inf counts every minimum). A smooth bowl gives 1."""
    loss = np.where(np.isfinite(s.loss), s.loss, np.inf)
    loss2 = loss.reshape(len(s.xcoords), -1)
    padded = np.pad(loss2, 1, constant_values=np.inf)
    lower = np.ones_like(loss2, dtype=bool)
    nx, ny = loss2.shape
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if (di, dj) != (0, 0):
                lower &= loss2 < padded[1 + di:1 + di + nx, 1 + dj:1 + dj + ny]
    return int(np.count_nonzero(lower & (loss2 <= loss[s.centre_index()] + delta)))
