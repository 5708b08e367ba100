"""Step and spike load shapes for Locust, chosen with ``--shape step|spike`` (no shape by default).

Both read the common options: ``-u`` is the peak user count, ``-r`` the spawn rate of the ramps, and
``-t`` the whole run (default 120 s). The schedules are plain functions so they can be read (and
checked) without a runner:

- step: ``STEP_COUNT`` equal steps from peak/steps up to the peak, each held for run_time/steps;
- spike: a baseline of a fifth of the peak, the peak during the middle third, then the baseline
  again.
"""

from __future__ import annotations

import math

from locust import LoadTestShape

STEP_COUNT = 4
DEFAULT_RUN_TIME_S = 120.0
DEFAULT_PEAK_USERS = 20


def step_users(
    elapsed_s: float, *, peak: int, duration_s: float, steps: int = STEP_COUNT
) -> int | None:
    """Users wanted ``elapsed_s`` into a step run, or None once it is over."""
    if elapsed_s >= duration_s:
        return None
    step = min(steps, int(elapsed_s / (duration_s / steps)) + 1)
    return max(1, math.ceil(peak * step / steps))


def spike_users(elapsed_s: float, *, peak: int, duration_s: float) -> int | None:
    """Users wanted ``elapsed_s`` into a spike run, or None once it is over."""
    if elapsed_s >= duration_s:
        return None
    in_spike = duration_s / 3 <= elapsed_s < 2 * duration_s / 3
    return peak if in_spike else max(1, peak // 5)


class _OptionsShape(LoadTestShape):
    """A shape sized by ``-u``, ``-r`` and ``-t``."""

    abstract = True
    use_common_options = True

    def _sizes(self) -> tuple[int, float, float]:
        options = self.runner.environment.parsed_options if self.runner else None
        peak = getattr(options, "num_users", None) or DEFAULT_PEAK_USERS
        rate = getattr(options, "spawn_rate", None) or float(peak)
        duration = getattr(options, "run_time", None) or DEFAULT_RUN_TIME_S
        return int(peak), float(rate), float(duration)


class StepShape(_OptionsShape):
    """Climb to the peak in equal steps: where does latency start to bend?"""

    def tick(self) -> tuple[int, float] | None:
        peak, rate, duration = self._sizes()
        users = step_users(self.get_run_time(), peak=peak, duration_s=duration)
        return None if users is None else (users, rate)


class SpikeShape(_OptionsShape):
    """Jump from a baseline to the peak and back: does the server recover?"""

    def tick(self) -> tuple[int, float] | None:
        peak, _, duration = self._sizes()
        users = spike_users(self.get_run_time(), peak=peak, duration_s=duration)
        return None if users is None else (users, float(peak))


SHAPES: dict[str, type[LoadTestShape]] = {"step": StepShape, "spike": SpikeShape}
