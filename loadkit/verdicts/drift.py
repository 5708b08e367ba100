"""Drift over a long run: least-squares slopes of latency and server RSS per interval, and the leak
verdict from the RSS slope with its confidence.

Pure judgement: rows in, a block out. The slope's 95% confidence interval comes from the fit's
residuals (standard error times Student's t for n - 2 degrees of freedom). A leak is called when the
whole interval lies above ``leak_mb_per_h`` (a slope we could not tell from noise is "no leak
detected", not "no leak"); fewer than ``MIN_INTERVALS`` intervals or less than ``MIN_DURATION_S``
of steady state is "too few samples".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_INTERVALS = 8
MIN_DURATION_S = 60.0
LEAK_MB_PER_H = 10.0
# Student's t, two-sided 95%, by degrees of freedom (beyond the table: 1.96).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
        10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04, 60: 2.00, 120: 1.98}  # fmt: skip


@dataclass(frozen=True)
class Fit:
    """A least-squares line: slope and intercept (y per x unit), the slope's standard error, n."""

    slope: float
    intercept: float
    stderr: float
    n: int

    def ci95(self) -> tuple[float, float]:
        """The slope's 95% confidence interval."""
        half = t95(self.n - 2) * self.stderr
        return self.slope - half, self.slope + half


def t95(dof: int) -> float:
    """Two-sided 95% Student's t for ``dof`` degrees of freedom (the next smaller tabled dof)."""
    if dof < 1:
        return math.inf
    known = [d for d in _T95 if d <= dof]
    return _T95[max(known)] if dof <= 120 else 1.96


def fit(xs: Sequence[float], ys: Sequence[float]) -> Fit | None:
    """Ordinary least squares of ys on xs; None with fewer than 3 points or no spread in x."""
    n = len(xs)
    if n != len(ys) or n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    stderr = math.sqrt(residual / (n - 2) / sxx)
    return Fit(slope, intercept, stderr, n)
