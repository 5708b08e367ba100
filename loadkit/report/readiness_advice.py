"""Scaling recommendations and what to monitor, derived from the run's figures (pure).

Each recommendation names the figures it rests on and says "not enough data" when one is missing:

- **pool size** from the connections in use at the knee of the capacity search (capacity.json's
  steps), against the pool's size and capacity (size + max_overflow) as the reports measured them;
- **workers** from the server's CPU at the knee (percent of one core, per server worker);
- **per-user limits** from the rate-limit findings (the default limit the scenarios proved, the
  limiter defects) against what one simulated therapist sends (capacity / concurrent therapists).

What to monitor: for each figure a capacity step records (p95, p99, errors, achieved rate, late
starts, server CPU, pool in use), the lowest offered rate at which it crossed its limit, in the
order they crossed: the first ones are the leading indicators to alert on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadkit.measure.values import number
from loadkit.report import readiness
from loadkit.verdicts import capacity as capacity_verdict

POOL_HEADROOM = 1.5  # connections to provision per connection in use at the knee
CPU_BOUND_PERCENT = 80.0  # a worker's CPU (percent of its core) from which it is CPU-bound
CPU_TARGET_PERCENT = 70.0  # the utilisation a sized worker should run at
LIMIT_HEADROOM = 2.0  # a per-user limit should allow this many times one therapist's pace
LIMITER_DEFECTS = ("limiter-500", "limit-missing", "default-limit-missing", "retry-after-missing")
NOT_ENOUGH = "not enough data"


@dataclass(frozen=True)
class Advice:
    """One recommendation: ``value`` is the recommended figure (None: no figure to give)."""

    topic: str
    text: str
    rests_on: str
    value: float | None = None

    @property
    def enough_data(self) -> bool:
        """Whether the recommendation rests on measured figures."""
        return not self.text.startswith(NOT_ENOUGH)


def _g(value: Any) -> str:
    return f"{number(value):g}" if number(value) is not None else "n/a"


def _step_text(step: Mapping[str, Any] | None) -> str:
    return f"the step at {_g(step.get('offered_rps'))} req/s offered" if step else "no step"


def pool_figures(
    reports: Sequence[Mapping[str, Any]], capacity: Mapping[str, Any] | None
) -> tuple[float | None, float | None]:
    """(pool size, pool capacity) as measured: capacity.json's db_pool, else the largest any
    scenario report measured; the capacity the knee's step saw (``pool_capacity``) first."""
    step = readiness.knee(capacity).at or {}
    blocks = [(capacity or {}).get("db_pool") or {}] + [r.get("db_pool") or {} for r in reports]
    for block in blocks:
        size, overflow = number(block.get("size")), number(block.get("max_overflow"))
        total = number(step.get("pool_capacity")) or number(block.get("capacity"))
        if total is None and size is not None and overflow is not None:
            total = size + overflow
        if size is not None or total is not None:
            return size, total
    return None, number(step.get("pool_capacity"))


def pool_size(reports: Sequence[Mapping[str, Any]], capacity: Mapping[str, Any] | None) -> Advice:
    """DB pool size from the connections in use around the knee."""
    knee = readiness.knee(capacity)
    size, total = pool_figures(reports, capacity)
    near = [s for s in (knee.passed, knee.failed) if s]
    in_use = [(number(s.get("pool_checked_out_max")), s) for s in near]
    in_use = [(v, s) for v, s in in_use if v is not None]
    if not in_use or total is None:
        missing = "the pool's capacity" if in_use else "connections in use at the knee"
        return Advice("pool size", f"{NOT_ENOUGH}: {missing} not measured.", "pool_checked_out_max")
    peak, seen = max(in_use, key=lambda pair: pair[0])
    rests = (
        f"pool_checked_out_max {peak:g} at {_step_text(seen)} (capacity.json steps); pool "
        f"size {_g(size)}, capacity {total:g} (size + max_overflow)"
    )
    if peak >= total:
        value = 2 * total
        text = (
            f"The pool was full at the knee ({peak:g} of {total:g} connections in use): the "
            f"demand beyond it was not measured. Raise DB_POOL_SIZE + DB_MAX_OVERFLOW to at "
            f"least {value:g} and run readiness again to see the real need."
        )
        return Advice("pool size", text, rests, value)
    value = max(1, math.ceil(peak * POOL_HEADROOM))
    need = f"{peak:g} connections were in use at the knee, {value} with {POOL_HEADROOM:g}x headroom"
    if size is not None and value <= size:
        text = f"Keep DB_POOL_SIZE at {size:g}: {need}; the pool is not what limits."
    elif value <= total:
        text = (
            f"Raise DB_POOL_SIZE from {_g(size)} to {value}: {need}; size + max_overflow "
            f"({total:g}) covers it, but the steady load should not live on overflow connections."
        )
    else:
        text = (
            f"Raise DB_POOL_SIZE to at least {value} (now {_g(size)}, capacity {total:g}): {need}."
        )
    return Advice("pool size", text, rests, float(value))


def _cpu_at_knee(knee: readiness.Knee) -> tuple[float | None, Mapping[str, Any] | None]:
    step = knee.at
    return (number(step.get("server_cpu_percent")) if step else None), step


def _per_core(knee: readiness.Knee) -> tuple[str, str]:
    """(text, rests-on) of the CPU one request cost at the last passing step, if measured."""
    achieved = number((knee.passed or {}).get("achieved_rps"))
    cpu = number((knee.passed or {}).get("server_cpu_percent"))
    if not achieved or not cpu:
        return "", ""
    per_request = cpu / 100 / achieved * 1000
    per_core = CPU_TARGET_PERCENT / 100 / (per_request / 1000)
    return (
        f"; a request cost {per_request:.1f} ms of server CPU, so each worker core serves about "
        f"{per_core:.0f} req/s at {CPU_TARGET_PERCENT:g}%",
        f"; achieved_rps {achieved:g} at {cpu:g}% CPU (last passing step)",
    )


def _scaling_text(capacity: Mapping[str, Any] | None) -> tuple[str, str]:
    scaling = (capacity or {}).get("scaling") or {}
    factor = number(scaling.get("factor"))
    if factor is None:
        return "", ""
    counts = [str(r.get("server_workers")) for r in scaling.get("by_workers") or []]
    return (
        f"; measured: {' -> '.join(counts)} workers scaled capacity {factor:g}x",
        f"; scaling.factor {factor:g}",
    )


def workers(reports: Sequence[Mapping[str, Any]], capacity: Mapping[str, Any] | None) -> Advice:
    """Server workers from the server's CPU at the knee."""
    knee = readiness.knee(capacity)
    cpu, step = _cpu_at_knee(knee)
    count = readiness.server_workers(capacity)
    if cpu is None or step is None:
        text = f"{NOT_ENOUGH}: server CPU at the knee not measured."
        return Advice("workers", text, "server_cpu_percent")
    per_worker = cpu / count
    rests = f"server_cpu_percent {cpu:g} at {_step_text(step)} with {count} server worker(s)"
    if per_worker < CPU_BOUND_PERCENT:
        name = readiness.first_bottleneck(capacity)[0] or "the limiting factor"
        text = (
            f"Adding workers will not raise capacity: at the knee each worker used "
            f"{per_worker:.0f}% of a core (below {CPU_BOUND_PERCENT:g}%); address {name} first."
        )
        return Advice("workers", text, rests, float(count))
    value = math.ceil(cpu / CPU_TARGET_PERCENT)
    text = (
        f"The server was CPU-bound at the knee ({per_worker:.0f}% of a core per worker): run at "
        f"least {value} workers, each on its own core, to carry that load at "
        f"{cpu / value:.0f}% each"
    )
    for more_text, more_rests in (_per_core(knee), _scaling_text(capacity)):
        text, rests = text + more_text, rests + more_rests
    machine = readiness.cores(reports)
    if machine is not None and value > machine:
        text += f" (this machine has {machine} cores, shared with the load generator)"
    return Advice("workers", text + ".", rests, float(value))


def default_limit(reports: Sequence[Mapping[str, Any]]) -> tuple[float | None, float | None, str]:
    """(limit, window s, the report it came from) of the default per-user limit the run tested."""
    for report in reports:
        name = str(report.get("test_name"))
        if "default" not in name or not ("rate_limit" in name or "limiter" in name):
            continue
        params = report.get("parameters") or {}
        limit, window = number(params.get("limit")), number(params.get("window_s"))
        if limit is not None and window:
            return limit, window, name
    return None, None, ""


def _demand_per_minute(capacity: Mapping[str, Any] | None) -> float | None:
    rps = number((capacity or {}).get("max_sustainable_rps"))
    therapists = number((capacity or {}).get("concurrent_therapists"))
    if not rps or not therapists:
        return None
    return rps / therapists * 60


def per_user_limits(
    reports: Sequence[Mapping[str, Any]], capacity: Mapping[str, Any] | None
) -> Advice:
    """The per-user default limit against one therapist's pace, and the limiter findings."""
    limit, window, source = default_limit(reports)
    demand = _demand_per_minute(capacity)
    if limit is None or demand is None:
        missing = (
            "no default-limit scenario ran"
            if limit is None
            else "no capacity with concurrent therapists"
        )
        return Advice(
            "per-user limits", f"{NOT_ENOUGH}: {missing}.", "default limit, concurrent_therapists"
        )
    per_minute = limit * 60 / window
    rests = (
        f"{source}: limit {limit:g} per {window:g} s; capacity.json: max_sustainable_rps "
        f"{_g(capacity.get('max_sustainable_rps'))} over concurrent_therapists "
        f"{_g(capacity.get('concurrent_therapists'))} = {demand:.1f} requests/minute each"
    )
    need = math.ceil(demand * LIMIT_HEADROOM)
    found = [d["id"] for d in readiness.defects(reports)]
    text, value = _limit_text(per_minute, demand, need, "default-limit-missing" in found)
    limiter = [i for i in found if i in LIMITER_DEFECTS and i != "default-limit-missing"]
    if limiter:
        text += f" Fix the limiter too: {', '.join(limiter)}."
    if "login-limit-by-address" in found:
        text += (
            " Key the login limit by (address, email): keyed by address alone, every "
            "therapist behind one clinic's address shares one login budget."
        )
    if ((capacity or {}).get("limiting_factor") or {}).get("name") == "rate_limit":
        text += " The limits, not the server, stopped the capacity search."
    return Advice("per-user limits", text, rests, value)


def _limit_text(per_minute: float, demand: float, need: int, missing: bool) -> tuple[str, float]:
    """The recommendation on the default limit and its value (requests per minute)."""
    pace = f"one therapist at the personas' pace sends {demand:.1f}/minute"
    if missing:
        return (
            f"Enforce a per-user default limit of at least {need}/minute: the configured "
            f"{per_minute:g}/minute was never applied (defect default-limit-missing); {pace}.",
            float(need),
        )
    if per_minute < need:
        return (
            f"Raise the per-user default limit to at least {need}/minute: {pace} and the limit "
            f"allows {per_minute:g}/minute (less than {LIMIT_HEADROOM:g}x), so busy therapists "
            "would be refused.",
            float(need),
        )
    return (
        f"Keep the per-user default limit ({per_minute:g}/minute): it is "
        f"{per_minute / demand:.1f}x what one therapist sends ({demand:.1f}/minute).",
        per_minute,
    )


def recommendations(
    reports: Sequence[Mapping[str, Any]], capacity: Mapping[str, Any] | None
) -> list[Advice]:
    """The three scaling recommendations, in a stable order."""
    return [
        pool_size(reports, capacity),
        workers(reports, capacity),
        per_user_limits(reports, capacity),
    ]


@dataclass(frozen=True)
class Signal:
    """A figure to monitor: the offered rate at which it first crossed its limit (None: never)."""

    figure: str
    limit: str
    first_crossed_rps: float | None
    value_at_pass: float | None
    value_at_fail: float | None


Reading = Callable[[Mapping[str, Any]], float | None]


def _field(key: str) -> Reading:
    return lambda step: number(step.get(key))


def _late_percent(step: Mapping[str, Any]) -> float | None:
    """Late starts in percent of what the step sent, as the capacity search judged them."""
    return (
        round(capacity_verdict.late_percent(step), 2)
        if step.get("late_starts") is not None
        else None
    )


def _maximum(figure: str, read: Reading, limit: float | None, strict: bool = True) -> list:
    if limit is None:
        return []
    text = f"> {limit:g}" if strict else f">= {limit:g}"
    return [(figure, read, text, (lambda v: v > limit) if strict else (lambda v: v >= limit))]


def _signals(capacity: Mapping[str, Any], total_pool: float | None) -> list[tuple]:
    """(figure, reading of a step, limit text, crossed?) for each figure a step records."""
    slo = {k: number(v) for k, v in (capacity.get("slo") or {}).items()}
    rows = _maximum("p95 ms", _field("p95_ms"), slo.get("p95_ms"))
    rows += _maximum("p99 ms", _field("p99_ms"), slo.get("p99_ms"))
    rows += _maximum("errors %", _field("error_rate_percent"), slo.get("error_rate_percent"))
    if slo.get("late_start_percent") is not None:
        rows += _maximum("late starts %", _late_percent, slo["late_start_percent"])
    else:
        rows += _maximum("late starts", _field("late_starts"), 0)
    cpu_limit = CPU_BOUND_PERCENT * readiness.server_workers(capacity)
    rows += _maximum("server CPU %", _field("server_cpu_percent"), cpu_limit, strict=False)
    rows += _maximum("pool in use", _field("pool_checked_out_max"), total_pool, strict=False)
    ratio = slo.get("achieved_ratio_min")
    if ratio is not None:
        reading = capacity_verdict.achieved_ratio
        rows.append(("achieved / offered", reading, f"< {ratio:g}", lambda v: v < ratio))
    return rows


def monitoring(
    reports: Sequence[Mapping[str, Any]], capacity: Mapping[str, Any] | None
) -> list[Signal]:
    """Each figure with the lowest offered rate at which it crossed its limit, first-crossed first
    (never-crossed last, in their listed order); [] without capacity steps."""
    rows = readiness.steps(capacity)
    if not rows:
        return []
    knee = readiness.knee(capacity)
    signals = []
    for figure, read, limit, crossed in _signals(capacity, pool_figures(reports, capacity)[1]):
        hit = [s for s in rows if (v := read(s)) is not None and crossed(v)]
        first = number(hit[0]["offered_rps"]) if hit else None
        at_pass, at_fail = (read(step) if step else None for step in (knee.passed, knee.failed))
        signals.append(Signal(figure, limit, first, at_pass, at_fail))
    return sorted(signals, key=lambda s: (s.first_crossed_rps is None, s.first_crossed_rps or 0))
