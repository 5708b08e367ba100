"""Drift over a long run: least-squares slopes of latency and server RSS per interval, and the leak
verdict from the RSS slope with its confidence.

Pure judgement: rows in, a block out. The slope's 95% confidence interval comes from the fit's
residuals (standard error times Student's t for n - 2 degrees of freedom). The leak verdict is
fitted on the second half of the steady state (an allocator's early growth is not a leak):

- "leak": the whole interval lies above ``LEAK_MB_PER_H`` and the fitted growth over that half
  exceeds ``NOISE_FLOOR_MB`` (a short run's few MB of warm-up are not called a leak);
- "no leak": the whole interval lies below ``LEAK_MB_PER_H``;
- "inconclusive": anything between (e.g. a run too short to resolve 10 MB/h);
- "too few samples": fewer than ``MIN_INTERVALS`` intervals in that half, or less than
  ``MIN_DURATION_S`` of steady state.

The interval assumes independent residuals; RSS moves in correlated steps, so it is on the narrow
side: the limit and the noise floor are set with that margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_INTERVALS = 8
MIN_DURATION_S = 60.0
LEAK_MB_PER_H = 10.0
NOISE_FLOOR_MB = 16.0
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


LATENCY = ("p50_ms", "p95_ms", "p99_ms")


def _points(rows: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """(hours since t0, value) of the rows that hold ``key``."""
    known = [r for r in rows if r.get(key) is not None]
    return [r["t"] / 3600 for r in known], [float(r[key]) for r in known]


def _slope_fields(line: Fit | None) -> dict:
    if line is None:
        return {"per_hour": None, "ci95": None, "n": 0}
    low, high = line.ci95()
    ci = None if math.isinf(high - low) else [round(low, 3), round(high, 3)]
    return {"per_hour": round(line.slope, 3), "ci95": ci, "n": line.n}


def leak_verdict(
    xs: Sequence[float],
    ys: Sequence[float],
    duration_s: float,
    limit: float = LEAK_MB_PER_H,
    min_duration_s: float = MIN_DURATION_S,
) -> dict:
    """The leak verdict (see the module) from RSS (MB) over hours since t0."""
    block = {"limit_mb_per_h": limit, "noise_floor_mb": NOISE_FLOOR_MB, "confidence": 0.95,
             "fitted_on": "second half of the steady state", "min_intervals": MIN_INTERVALS,
             "min_duration_s": min_duration_s}  # fmt: skip
    half = len(xs) // 2
    line = fit(xs[half:], ys[half:])
    if len(xs) - half < MIN_INTERVALS or duration_s < min_duration_s or line is None:
        why = f"{len(xs) - half} intervals over {duration_s:.0f} s in the fitted half"
        return {**block, "verdict": "too few samples", "reason": why, **_slope_fields(line)}
    low, high = line.ci95()
    growth = line.slope * (xs[-1] - xs[half])
    leak = low > limit and growth > NOISE_FLOOR_MB
    verdict = "leak" if leak else "no leak" if high < limit else "inconclusive"
    reason = (f"RSS slope {line.slope:+.1f} MB/h (95% CI {low:+.1f} .. {high:+.1f}), "
              f"{growth:+.1f} MB over the fitted half; limit {limit:g} MB/h")  # fmt: skip
    return {**block, "verdict": verdict, "reason": reason, "growth_mb": round(growth, 3),
            **_slope_fields(line)}  # fmt: skip


def drift_block(
    rows: Sequence[dict],
    *,
    interval_s: float,
    warmup_s: float = 0.0,
    generator: Sequence[tuple[float, float]] = (),
    limit_mb_per_h: float = LEAK_MB_PER_H,
    min_duration_s: float = MIN_DURATION_S,
) -> dict:
    """The report's ``drift`` block from its time series (t in s since t0, per ``interval_s``):
    the slopes per hour of p50/p95/p99 (ms/h) and server RSS (MB/h) over the steady state, the
    generator's own RSS slope (``generator``: (t s, MB) samples), and the leak verdict."""
    steady = [r for r in rows if r["t"] >= warmup_s]
    duration = steady[-1]["t"] + interval_s - steady[0]["t"] if steady else 0.0
    slopes = {key: _slope_fields(fit(*_points(steady, key))) for key in (*LATENCY, "server_rss_mb")}
    gen = [(t / 3600, mb) for t, mb in generator if t >= warmup_s]
    gen_x, gen_y = [x for x, _ in gen], [y for _, y in gen]
    return {
        "interval_s": interval_s,
        "steady_from_s": warmup_s,
        "duration_s": round(duration, 1),
        "intervals": len(steady),
        "slopes_per_hour": slopes,
        "generator_rss_mb": {
            **_slope_fields(fit(gen_x, gen_y)),
            "first_mb": gen_y[0] if gen_y else None,
            "last_mb": gen_y[-1] if gen_y else None,
            "peak_mb": max(gen_y) if gen_y else None,
            "leak": leak_verdict(gen_x, gen_y, duration, limit_mb_per_h, min_duration_s),
        },
        "leak": leak_verdict(
            *_points(steady, "server_rss_mb"), duration, limit_mb_per_h, min_duration_s
        ),
    }
