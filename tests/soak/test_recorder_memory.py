"""The run recorder's memory over a simulated two-hour soak: after the first minutes it stops
growing, whatever the run's length (issue 17: the generator's memory stays flat)."""

from __future__ import annotations

import random
import tracemalloc

from loadkit.measure.recording import RunRecorder

RATE = 12  # requests a second: the soak preset's 20 users
ENDPOINTS = [f"GET /api/item-{i}/" for i in range(12)]
PERSONAS = ("RealisticTherapist", "DbPoolStressor", "RateLimitProber")


def _latency_s(rng: random.Random) -> float:
    """A lognormal body (median 20 ms) with a Pareto tail up to the 30 s request time-out: rare
    slow requests keep appearing."""
    if rng.random() < 0.05:
        return min(30.0, 0.002 * rng.paretovariate(1.1))
    return rng.lognormvariate(-3.9, 0.9)


def _feed(recorder: RunRecorder, rng: random.Random, start_s: int, end_s: int) -> None:
    for second in range(start_s, end_s):
        for i in range(RATE):
            status = 500 if rng.random() < 0.001 else 200
            recorder.record(
                rng.choice(ENDPOINTS), _latency_s(rng), status=status,
                error_kind="http_5xx" if status == 500 else None, message="boom",
                at=second + i / RATE, persona=rng.choice(PERSONAS),
            )  # fmt: skip


def test_an_hour_more_takes_no_more_memory_than_the_first_twenty_minutes() -> None:
    """57,600 requests over 80 simulated minutes into one recorder (12 endpoints, 3 personas, a
    heavy tail, some 500s): from minute 20 to minute 80 its memory grows less than 512 kB, where
    a dict of histogram keys grew 3.8 MB over the same requests. What is left is the octaves the
    tail reaches for the first time (8 kB each, at most 25 per histogram under the 30 s time-out)
    and wider time-series points. At both moments the series holds about 150 points (8 s, then
    32 s wide)."""
    rng = random.Random(17)
    recorder = RunRecorder()
    recorder.start(0.0)
    tracemalloc.start()
    try:
        _feed(recorder, rng, 0, 1200)
        at_20_min = tracemalloc.get_traced_memory()[0]
        points_20_min = len(recorder.series.buckets)
        _feed(recorder, rng, 1200, 4800)
        at_80_min = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert recorder.total == RATE * 4800
    assert {points_20_min, len(recorder.series.buckets)} <= {149, 150}  # the 12 s tail aside
    assert at_80_min - at_20_min < 512 * 1024, (at_20_min, at_80_min)
