"""The /live canary beside a capacity search, read per step: is the server's loop held?

GET /live has no dependencies, so while requests wait for the database pool it still answers at
once; when it slows with them, the server itself (its event loop, or its one worker) is what they
wait for. The search runs it slowly (CANARY_RATE a second: little load beside the mix, even on a
small server) and keeps each answer's wall time so a step reads its own window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from loadkit.measure.histogram import nearest_rank
from loadkit.watch import canary

CANARY_RATE = 2.0


class WindowCanary(canary.Canary):
    """The canary, each answer also kept as (wall time, latency ms or None for an error)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.marks: list[tuple[float, float | None]] = []

    def _one(self, intended: float) -> float | None:
        latency = super()._one(intended)
        self.marks.append((time.time(), latency))
        return latency

    def p99_between(self, start: float, end: float) -> float | None:
        """p99 (ms) of the answers between two wall times; an error counts as the time-out."""
        timeout_ms = self.settings.timeout_s * 1000
        rows = [timeout_ms if ms is None else ms for t, ms in list(self.marks) if start <= t <= end]
        return nearest_rank(rows, 99) if rows else None


@dataclass
class LoopWatch:
    """A started canary and the p99 above which a step's loop counts as held."""

    canary: WindowCanary
    idle_p99_ms: float
    threshold_ms: float

    def figures(self, start: float, end: float) -> dict:
        """The step's canary figures."""
        p99 = self.canary.p99_between(start, end)
        return {"canary_p99_ms": None if p99 is None else round(p99, 2),
                "canary_threshold_ms": round(self.threshold_ms, 2)}  # fmt: skip


def start(url: str, profile, verify: bool | str = True) -> LoopWatch | None:
    """Measure /live idle, then start the slow canary; None when /live does not answer."""
    base = canary.Settings.from_profile(profile)
    settings = canary.Settings(CANARY_RATE, base.factor, base.min_excess_ms, base.idle_s)
    idle = canary.measure_idle(url, canary.Settings(rate=base.rate, idle_s=base.idle_s),
                               verify=verify)  # fmt: skip
    if idle is None:
        return None
    watch = WindowCanary(url, settings, verify=verify).start()
    return LoopWatch(watch, idle, settings.threshold_ms(idle))
