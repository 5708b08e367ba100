"""Bottleneck analysis: findings derived from one scenario report, never from typed-in figures.

Each rule reads the report's own fields (db_pool, endpoints, status_codes, errors_by_kind,
resources, canary, cost) and returns a finding only when the data warrants it, quoting the numbers
behind it; a finding carries its ``evidence`` (the figures and the sample count it rests on). A
claim that rests on monitor samples needs at least `evidence.MIN_SAMPLES` of them; with fewer the
finding says "too few samples" instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loadkit.verdicts.evidence import enough, too_few

# A slow endpoint "dominates" when it takes at least this share of all response time...
DOMINANT_TIME_SHARE = 0.5
# ...and at least this many times its share of requests.
DOMINANT_OVER_REQUEST_SHARE = 2.0
# Server CPU (percent of one core, summed over the process tree) at which a run looks CPU-bound.
SERVER_CPU_BOUND_PERCENT = 80.0
# A 429 share above this, in a scenario not about limits, means the limit shaped the figures.
RATE_LIMIT_SHAPED_SHARE = 0.05
# The canary's worst gap is a finding only this far beyond its own sampling interval.
CANARY_GAP_EXCESS_MS = 100.0


@dataclass(frozen=True)
class Finding:
    """One observation: ``kind`` is a stable key (for tests and tools), ``text`` the sentence."""

    kind: str
    text: str
    evidence: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _num(value: Any) -> float | None:
    """The value as a float, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def pool_saturation(report: Mapping[str, Any]) -> Finding | None:
    """Pool saturated: connections in use peaked at capacity, or exhaustion events occurred."""
    pool = report.get("db_pool") or {}
    size, overflow = _num(pool.get("size")), _num(pool.get("max_overflow"))
    peak, events = _num(pool.get("checked_out_max")), _num(pool.get("exhaustion_events")) or 0
    capacity = _num(pool.get("capacity"))
    if capacity is None and size is not None and overflow is not None:
        capacity = size + overflow
    at_capacity = capacity is not None and peak is not None and peak >= capacity
    if not at_capacity and events <= 0:
        return None
    samples = pool.get("samples")
    evidence = {"samples": samples, "checked_out_max": peak, "capacity": capacity}
    evidence["exhaustion_events"] = events
    if not enough(samples):
        return Finding("pool_too_few", f"Pool saturation: {too_few('it', samples)}.", evidence)
    cap_text = f"{capacity:g}" if capacity is not None else "unknown"
    peak_text = f"{peak:g}" if peak is not None else "unknown"
    return Finding(
        "pool_saturation",
        f"Connection pool saturated: checked-out connections peaked at {peak_text} of "
        f"{cap_text} (size + max_overflow), with {events:g} exhaustion events, in {samples} "
        "pool samples.",
        evidence,
    )


def _time_shares(endpoints: Mapping[str, Any]) -> list[tuple[str, float, float, float]]:
    """(endpoint, share of response time, share of requests, avg ms) for each endpoint."""
    rows = []
    for name, stats in endpoints.items():
        requests, avg = _num(stats.get("requests")), _num(stats.get("response_time_avg_ms"))
        if requests and avg is not None:
            rows.append((name, requests * avg, requests, avg))
    total_time = sum(r[1] for r in rows)
    total_requests = sum(r[2] for r in rows)
    if total_time <= 0 or total_requests <= 0:
        return []
    return [(n, t / total_time, q / total_requests, a) for n, t, q, a in rows]


def dominant_endpoints(report: Mapping[str, Any]) -> list[Finding]:
    """Endpoints taking most of the response time for a small share of requests (e.g. login)."""
    findings = []
    resources = report.get("resources") or {}
    cpu = _num(resources.get("cpu_avg_percent")) if enough(resources.get("cpu_samples")) else None
    for name, time_share, request_share, avg in _time_shares(report.get("endpoints") or {}):
        if len(report.get("endpoints") or {}) < 2 or time_share < DOMINANT_TIME_SHARE:
            continue
        if time_share < DOMINANT_OVER_REQUEST_SHARE * request_share:
            continue
        cpu_text = ""
        if cpu is not None and cpu >= SERVER_CPU_BOUND_PERCENT:
            cpu_text = f" Server CPU averaged {cpu:.1f}%, so this endpoint is likely CPU-bound."
        findings.append(
            Finding(
                "dominant_endpoint",
                f"`{name}` took {time_share * 100:.1f}% of all response time for "
                f"{request_share * 100:.1f}% of requests (average {avg:.2f} ms).{cpu_text}",
            )
        )
    return findings


def server_cpu(report: Mapping[str, Any]) -> Finding | None:
    """Server CPU at or above the CPU-bound mark (percent of one core), from enough samples."""
    resources = report.get("resources") or {}
    cpu, samples = _num(resources.get("cpu_avg_percent")), resources.get("cpu_samples")
    if cpu is None or cpu < SERVER_CPU_BOUND_PERCENT:
        return None
    evidence = {"cpu_avg_percent": cpu, "cpu_samples": samples}
    if not enough(samples):
        text = f"Server CPU averaged {cpu:.1f}%, but {too_few('whether it is CPU-bound', samples)}."
        return Finding("server_cpu_too_few", text, evidence)
    return Finding(
        "server_cpu",
        f"Server CPU averaged {cpu:.1f}% over {samples} samples (of one core; "
        f"{SERVER_CPU_BOUND_PERCENT:g}% or more suggests a CPU-bound server).",
        evidence,
    )


def rate_limit_share(report: Mapping[str, Any]) -> Finding | None:
    """Share of 429 answers among all requests; says when the limit shaped the figures."""
    total = _num(report.get("total_requests")) or 0
    limited = _num((report.get("status_codes") or {}).get("429")) or 0
    if total <= 0 or limited <= 0:
        return None
    share = limited / total
    text = f"Rate limit: {limited:g} of {total:g} requests answered 429 ({share * 100:.1f}%)."
    about_limits = any(k in str(report.get("test_name", "")) for k in ("rate_limit", "limiter"))
    if share > RATE_LIMIT_SHAPED_SHARE and not about_limits:
        text += " The limit, not the server, shaped these figures."
    return Finding("rate_limit", text)


def errors_by_kind(report: Mapping[str, Any]) -> Finding | None:
    """Non-zero error counts by kind (http_4xx, http_5xx, connection, timeout, check)."""
    kinds = {k: v for k, v in (report.get("errors_by_kind") or {}).items() if _num(v)}
    if not kinds:
        return None
    parts = ", ".join(f"{kind} {count:g}" for kind, count in sorted(kinds.items()))
    return Finding("errors", f"Errors by kind: {parts}.")


def generator_saturated(report: Mapping[str, Any]) -> Finding | None:
    """The load generator's own CPU was flagged saturated: figures describe the generator."""
    resources = report.get("resources") or {}
    if not resources.get("generator_saturated"):
        return None
    cpu = _num(resources.get("generator_cpu_percent"))
    cpu_text = f" at {cpu:.1f}% CPU" if cpu is not None else ""
    return Finding(
        "generator_saturated",
        f"The load generator was saturated{cpu_text}: latency and throughput describe the "
        "generator as much as the server. Use more processes (--processes N) or machines.",
    )


def resources_unavailable(report: Mapping[str, Any]) -> Finding | None:
    """Server memory and CPU were not measured (remote target or no server pid)."""
    resources = report.get("resources") or {}
    if _num(resources.get("memory_peak_mb")) is not None:
        return None
    reason = resources.get("unavailable_reason") or "remote target, or no --server-pid"
    return Finding(
        "resources_unavailable",
        f"Server memory and CPU figures are unavailable ({reason}): "
        "no resource finding can be made for this run.",
    )


def late_starts(report: Mapping[str, Any]) -> Finding | None:
    """Requests that started later than intended because the client was saturated."""
    late = _num(report.get("late_starts")) or 0
    if late <= 0:
        return None
    return Finding(
        "late_starts",
        f"{late:g} requests started late; their latency is timed from the intended start.",
    )


def interrupted(report: Mapping[str, Any]) -> Finding | None:
    """The run was interrupted: figures cover only the part that ran."""
    if not report.get("interrupted"):
        return None
    duration = _num(report.get("duration_seconds"))
    after = f" after {duration:.1f} s" if duration is not None else ""
    return Finding("interrupted", f"The run was interrupted{after}; figures cover what ran.")


# An endpoint is a CPU hot spot when it costs this many times the median endpoint's CPU per request
HOT_SPOT_FACTOR = 5.0
HOT_SPOT_MIN_MS = 20.0  # ...and at least this much CPU per request (one endpoint alone: this)


def canary(report: Mapping[str, Any]) -> Finding | None:
    """The /live canary, a finding only when flagged or when its worst gap is well beyond its own
    sampling interval; from too few canary requests it says so."""
    block = report.get("canary") or {}
    p99, gap, idle = (_num(block.get(k)) for k in ("p99_ms", "max_gap_ms", "idle_p99_ms"))
    rate, requests = _num(block.get("rate")), block.get("requests")
    period = 1000 / rate if rate else None
    long_gap = gap is not None and period is not None and gap > period + CANARY_GAP_EXCESS_MS
    if p99 is None or not (block.get("flagged") or long_gap):
        return None
    evidence = {"requests": requests, "p99_ms": p99, "idle_p99_ms": idle, "max_gap_ms": gap}
    evidence |= {"interval_ms": period, "threshold_ms": block.get("threshold_ms")}
    if not enough(requests):
        return Finding("canary_too_few", f"/live canary: {too_few('it', requests)}.", evidence)
    text = f"/live canary ({requests} requests): p99 {p99:.1f} ms"
    text += f" (idle p99 {idle:.1f} ms)" if idle is not None else ""
    if long_gap:
        text += f", worst gap {gap:.0f} ms against a {period:.0f} ms sampling interval"
    text += "."
    if block.get("flagged"):
        text += (
            f" Flagged: above {block.get('threshold_ms'):g} ms, a synchronous call is likely "
            "blocking the server's event loop. The generator shares the machine's cores with "
            "the server, so the bar is max(factor x idle, idle + a fixed margin)."
        )
    return Finding("canary_flagged" if block.get("flagged") else "canary_gap", text, evidence)


def _cost_samples(report: Mapping[str, Any]) -> Any:
    """The CPU samples a cost estimate rests on: its intervals, or the run's CPU samples."""
    block = report.get("cost") or {}
    if block.get("intervals") is not None:
        return block["intervals"]
    return (report.get("resources") or {}).get("cpu_samples")


def _hot_spot_text(name: str, row: Mapping[str, Any], versus: str, method: Any) -> str:
    ms = row["cpu_ms_per_request"]
    text = f"CPU hot spot: `{name}` costs about {ms:.0f} ms of server CPU per request{versus}"
    text += f" ({row.get('cpu_share_percent')}% of the server's CPU; {method} estimate"
    if row.get("capped"):
        text += f", {row.get('estimate_ms'):.0f} ms capped at the request's own average time"
    return text + ")."


def cost_hot_spots(report: Mapping[str, Any]) -> list[Finding]:
    """Endpoints whose estimated server CPU per request dwarfs the others' (password hashing)."""
    block = report.get("cost") or {}
    endpoints = block.get("endpoints") or {}
    rows = {n: _num(e.get("cpu_ms_per_request")) for n, e in endpoints.items()}
    rows = {n: v for n, v in rows.items() if v is not None}
    samples, findings = _cost_samples(report), []
    for name, ms in rows.items():
        others = sorted(v for n, v in rows.items() if n != name)
        median = others[len(others) // 2] if others else None
        if ms < HOT_SPOT_MIN_MS or (median is not None and ms < HOT_SPOT_FACTOR * max(median, 0.1)):
            continue
        evidence = {"endpoint": name, "cpu_samples": samples, **endpoints[name]}
        if not enough(samples):
            text = f"CPU cost of `{name}`: {too_few('it', samples)}."
            findings.append(Finding("cost_too_few", text, evidence))
            continue
        versus = f", {ms / max(median, 0.1):.0f}x the median endpoint" if median is not None else ""
        text = _hot_spot_text(name, endpoints[name], versus, block.get("method"))
        findings.append(Finding("cost_hot_spot", text, evidence | {"median_ms": median}))
    return findings


def pool_visibility(report: Mapping[str, Any]) -> Finding | None:
    """The pool figures look incomplete (never moved, or queueing with an idle reported pool)."""
    block = report.get("pool_visibility") or {}
    if block.get("complete") is not False:
        return None
    evidence = {"samples": block.get("samples"), "reason": block.get("reason")}
    return Finding("pool_incomplete", f"Pool figures incomplete: {block.get('reason')}.", evidence)


_SINGLE_RULES: tuple[Callable[[Mapping[str, Any]], Finding | None], ...] = (
    interrupted,
    pool_saturation,
    server_cpu,
    rate_limit_share,
    errors_by_kind,
    generator_saturated,
    late_starts,
    resources_unavailable,
)


def analyse(report: Mapping[str, Any]) -> list[Finding]:
    """Every finding the report's data warrants, in a stable order."""
    findings = [f for rule in _SINGLE_RULES[:3] if (f := rule(report))]
    findings += dominant_endpoints(report)
    findings += cost_hot_spots(report)
    findings += [f for rule in (pool_visibility, canary) if (f := rule(report))]
    findings += [f for rule in _SINGLE_RULES[3:] if (f := rule(report))]
    return findings
