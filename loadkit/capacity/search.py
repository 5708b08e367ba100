"""The search, pure: the next offered rate from the steps so far, or why the search ends.

Start at ``start_rps``, multiply by ``growth`` while steps pass, then bisect between the highest
passing rate and the lowest failing one above it until they are within ``precision`` of each
other: the search then ends at the first failing step after the last passing one. A first step
that fails halves the rate (down to ``min_rps``). A step whose generator saturated ends it, and
so does a passing step at ``max_rps``. The caller ends it when the next step would not fit in the
time left (--run-time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENDED_KNEE = "first failing step after last pass"
ENDED_GENERATOR = "generator saturated"
ENDED_RUN_TIME = "--run-time reached"
ENDED_MAX_RPS = "--max-rps reached"
ENDED_NONE_PASSED = "no step passed"
ENDED_INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Plan:
    """How the search moves: where it starts, how fast it grows, when bisection stops."""

    start_rps: float = 2.0
    growth: float = 2.0
    max_rps: float | None = None
    precision: float = 0.1
    min_rps: float = 0.5

    def __post_init__(self) -> None:
        if self.start_rps <= 0 or self.growth <= 1 or self.precision <= 0:
            raise ValueError("start_rps > 0, growth > 1 and precision > 0 are required")
        if self.max_rps is not None and self.max_rps <= 0:
            raise ValueError("max_rps must be positive")


@dataclass(frozen=True)
class Next:
    """The next step's rate and phase ("grow" or "bisect"), or None and why the search ended."""

    rate: float | None
    phase: str = "grow"
    ended: str | None = None


def _rate(value: float) -> float:
    return round(value, 2) if value < 100 else round(value, 1)


def bounds(steps: Sequence[Mapping]) -> tuple[float | None, float | None]:
    """(highest passing rate, lowest failing rate above it); None where there is none."""
    passed = [s["offered_rps"] for s in steps if s.get("passed")]
    lo = max(passed) if passed else None
    failed = [s["offered_rps"] for s in steps if not s.get("passed")]
    above = [r for r in failed if lo is None or r > lo]
    return lo, (min(above) if above else None)


def next_step(plan: Plan, steps: Sequence[Mapping]) -> Next:
    """The next step of the search after ``steps`` (each: offered_rps, passed, generator flag)."""
    if not steps:
        start = min(plan.start_rps, plan.max_rps) if plan.max_rps else plan.start_rps
        return Next(_rate(start), "grow")
    if steps[-1].get("generator_saturated"):
        return Next(None, ended=ENDED_GENERATOR)
    lo, hi = bounds(steps)
    if hi is None:
        if plan.max_rps is not None and lo >= plan.max_rps:
            return Next(None, ended=ENDED_MAX_RPS)
        grown = lo * plan.growth
        return Next(_rate(min(grown, plan.max_rps) if plan.max_rps else grown), "grow")
    if lo is None:
        if hi <= plan.min_rps:
            return Next(None, ended=ENDED_NONE_PASSED)
        return Next(_rate(max(hi / 2, plan.min_rps)), "bisect")
    if (hi - lo) / lo <= plan.precision:
        return Next(None, ended=ENDED_KNEE)
    return Next(_rate((lo + hi) / 2), "bisect")
