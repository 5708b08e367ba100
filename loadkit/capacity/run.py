"""The search loop against one target: steps chosen by `capacity.search`, run by
`capacity.steps`, judged by `verdicts.capacity`, within the time budget, one line per step."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loadkit.capacity import search as plan_search
from loadkit.capacity.steps import Timing, Watch, run_step
from loadkit.contract import mix
from loadkit.measure.recording import RunRecorder
from loadkit.verdicts import capacity as verdict

COOLDOWN_MAX_S = 15.0  # after a failing step: time for the server to answer its backlog


@dataclass
class Search:
    """What one search needs: target, request factory, plan, timing, criteria, monitors."""

    url: str
    factory: Callable
    plan: plan_search.Plan
    timing: Timing
    slo: dict
    watch: Watch
    budget_s: float
    server_cores: float
    verify: bool | str = True
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    say: Callable[[str], None] = print


@dataclass
class Found:
    """The search's result: its steps, why it ended, the figures read from them."""

    steps: list[dict]
    ended: str
    recorder: RunRecorder
    duration_s: float
    max_sustainable_rps: float | None = None
    limiting_factor: dict = field(default_factory=dict)
    concurrent_therapists: float | None = None
    cycle_time_s: float | None = None


def _line(n: int, step: dict) -> str:
    result = "passed" if step["passed"] else "failed: " + "; ".join(step["reasons"])
    return (
        f"step {n} ({step['phase']}): offered {step['offered_rps']:g} rps, achieved "
        f"{step['achieved_rps']:g}, p95 {step['p95_ms']} ms, errors {step['error_rate_percent']}%"
        f", server CPU {step['server_cpu_percent']}%, generator CPU "
        f"{step['generator_cpu_percent']}%: {result}"
    )


def _cooldown_s(step: dict) -> float:
    if step["passed"]:
        return 0.5
    backlog = step.get("backlog_end") or 0
    return min(COOLDOWN_MAX_S, max(1.0, backlog / max(step.get("achieved_rps") or 1.0, 1.0)))


async def _pause(s: Search, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(s.stop.wait(), seconds)


async def run_search(s: Search) -> Found:
    """Step until the plan ends, the budget would be overrun, or a stop; then judge."""
    started, steps, merged = time.monotonic(), [], RunRecorder()
    while True:
        nxt = plan_search.next_step(s.plan, steps)
        ended = nxt.ended
        if ended is None and s.stop.is_set():
            ended = plan_search.ENDED_INTERRUPTED
        elif ended is None and time.monotonic() - started + s.timing.step_s > s.budget_s:
            ended = plan_search.ENDED_RUN_TIME
        if ended is not None:
            break
        step, recorder = await run_step(s.url, s.factory, nxt.rate, phase=nxt.phase,
                                        timing=s.timing, watch=s.watch, verify=s.verify,
                                        stop=s.stop)  # fmt: skip
        _judge(step, s)
        merged.merge(recorder)
        steps.append(step)
        s.say(_line(len(steps), step))
        await _pause(s, _cooldown_s(step))
    return found(steps, ended, merged, time.monotonic() - started, s.server_cores)


def _judge(step: dict, s: Search) -> None:
    step["reasons"] = verdict.reasons(step, s.slo)
    if step.get("interrupted"):  # a part of a window: judged by nothing, the knee of nothing
        step["reasons"] = ["interrupted: the figures cover part of the window"]
    step["passed"] = not step["reasons"]
    saturated = verdict.generator_saturated(step, s.server_cores)
    step["generator_saturated"] = saturated and not step.get("interrupted")


def found(steps: list[dict], ended: str, merged: RunRecorder, duration_s: float,
          server_cores: float) -> Found:  # fmt: skip
    """The figures read from the steps: the highest passing rate, the factor, therapists."""
    result = Found(steps, ended, merged, duration_s)
    passing = [s for s in steps if s["passed"]]
    result.limiting_factor = verdict.factor(steps, server_cores=server_cores)
    if passing:
        best = max(passing, key=lambda s: s["offered_rps"])
        result.max_sustainable_rps = best["offered_rps"]
        result.cycle_time_s = round(mix.mean_think_s() + (best["p50_ms"] or 0) / 1000, 3)
        result.concurrent_therapists = round(best["offered_rps"] * result.cycle_time_s)
    return result
