"""One step of the search: the engine's open model at one rate, and the step's figures.

A step runs ``warmup_s + window_s`` at ``rate`` (uniform arrivals, each request timed from its
intended start), with the search-wide monitors sampling beside it. Its figures cover the steady
window only: latency and errors of the requests meant to start in it, the achieved rate (answers
that arrived in it), the server's CPU and the pool's connections sampled in it, and the backlog
(requests due but not answered) at its start and its end. Late starts are the engine's (a start
more than ``late_tolerance_s`` after its time) over the whole step, with the requests never sent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

from loadkit.capacity.loop_watch import LoopWatch
from loadkit.capacity.requests import LIMITED_ENDPOINTS
from loadkit.measure import engine
from loadkit.measure.trace import Sample, TracingRecorder
from loadkit.watch import monitor
from loadkit.watch import pool as pool_monitor


@dataclass(frozen=True)
class Timing:
    """How long each step runs and how it counts late starts."""

    warmup_s: float = 3.0
    window_s: float = 10.0
    drain_s: float = 2.0
    late_tolerance_s: float = 0.05  # a shared machine descheduls the generator for 10-30 ms
    timeout_s: float = 30.0

    @property
    def step_s(self) -> float:
        return self.warmup_s + self.window_s + self.drain_s


@dataclass
class Watch:
    """The search-wide monitors the steps read their slices from."""

    server: monitor.ServerMonitor
    pool: pool_monitor.PoolMonitor | None = None
    loop: LoopWatch | None = None


def _cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


async def run_step(
    url: str,
    factory: Callable,
    rate: float,
    *,
    phase: str,
    timing: Timing,
    watch: Watch,
    verify: bool | str = True,
    stop: asyncio.Event | None = None,
) -> tuple[dict, TracingRecorder]:
    """Run one step; (its figures as a capacity.json step, its recorder)."""
    recorder = TracingRecorder(warmup_s=timing.warmup_s)
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    result = await engine.run_open(
        url, factory, rate=rate, duration_s=timing.warmup_s + timing.window_s, recorder=recorder,
        timeout_s=timing.timeout_s, verify=verify, late_tolerance_s=timing.late_tolerance_s,
        drain_s=timing.drain_s, stop=stop,
    )  # fmt: skip
    own = 100 * (_cpu_seconds() - cpu0) / max(time.monotonic() - wall0, 1e-9)
    await asyncio.to_thread(watch.server.sample_once)
    step = figures(recorder, rate, timing, watch)
    step.update(phase=phase, generator_cpu_percent=round(own, 1), sent=result.sent,
                late_starts=result.late_starts, abandoned=result.abandoned,
                interrupted=result.interrupted)  # fmt: skip
    return step, recorder


def _end(sample: Sample) -> float:
    return sample.at + (sample.latency_s or 0.0)


def figures(recorder: TracingRecorder, rate: float, timing: Timing, watch: Watch) -> dict:
    """The steady window's figures of a finished step."""
    t0 = recorder.t0 or 0.0
    start, end = t0 + timing.warmup_s, t0 + timing.warmup_s + timing.window_s
    summary = recorder.summary(duration_s=timing.warmup_s + timing.window_s)
    answered = [s for s in recorder.samples if s.latency_s is not None]
    arrived = sum(1 for s in answered if start <= _end(s) < end)
    steady = [s for s in recorder.samples if s.at >= start]
    return {
        "offered_rps": rate,
        "achieved_rps": round(arrived / timing.window_s, 2),
        "p50_ms": summary["response_time_p50_ms"],
        "p95_ms": summary["response_time_p95_ms"],
        "p99_ms": summary["response_time_p99_ms"],
        "error_rate_percent": summary["error_rate_percent"],
        "requests": summary["total_requests"],
        "window_s": timing.window_s,
        "status_codes": summary["status_codes"],
        "limited_5xx": sum(1 for s in steady if _limited_5xx(s)),
        "backlog_start": backlog(recorder.samples, rate, t0, start),
        "backlog_end": backlog(recorder.samples, rate, t0, end),
        **_server_figures(watch, start, end),
    }


def _limited_5xx(sample: Sample) -> bool:
    return (sample.status or 0) >= 500 and sample.endpoint in LIMITED_ENDPOINTS


def backlog(samples: list[Sample], rate: float, t0: float, at: float) -> int:
    """Requests due to start by ``at`` (i/rate after t0) that had no answer by then."""
    due = math.floor((at - t0) * rate) + 1 if at >= t0 else 0
    return max(0, due - sum(1 for s in samples if _end(s) <= at))


def _within(rows: list[dict], start: float, end: float, key: str) -> list[float]:
    return [r[key] for r in rows if start <= r["t"] <= end and r.get(key) is not None]


def _server_figures(watch: Watch, start: float, end: float) -> Mapping:
    """Server CPU (mean of the window's samples) and pool connections in use (max)."""
    cpu = _within(watch.server.samples(), start, end, "cpu_percent")
    pool = watch.pool.samples() if watch.pool is not None else []
    used = _within(pool, start, end, "checked_out")
    sizes = [(r.get("size"), r.get("max_overflow")) for r in pool]
    capacity = next((a + b for a, b in reversed(sizes) if None not in (a, b) and b >= 0), None)
    loop = watch.loop.figures(start, end) if watch.loop is not None else {}
    return {
        "server_cpu_percent": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "pool_checked_out_max": max(used) if used else None,
        "pool_capacity": capacity,
        **loop,
    }
