"""Bottleneck analysis: findings derived from one scenario report, never from typed-in figures.

Each rule reads the report's own fields (db_pool, endpoints, status_codes, errors_by_kind,
resources) and returns a finding only when the data warrants it, quoting the numbers behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# A slow endpoint "dominates" when it takes at least this share of all response time...
DOMINANT_TIME_SHARE = 0.5
# ...and at least this many times its share of requests.
DOMINANT_OVER_REQUEST_SHARE = 2.0
# Server CPU (percent of one core, summed over the process tree) at which a run looks CPU-bound.
SERVER_CPU_BOUND_PERCENT = 80.0
# A 429 share above this, in a scenario not about limits, means the limit shaped the figures.
RATE_LIMIT_SHAPED_SHARE = 0.05


@dataclass(frozen=True)
class Finding:
    """One observation: ``kind`` is a stable key (for tests and tools), ``text`` the sentence."""

    kind: str
    text: str


def _num(value: Any) -> float | None:
    """The value as a float, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def pool_saturation(report: Mapping[str, Any]) -> Finding | None:
    """Pool saturated: checked-out peaked at size + max_overflow, or exhaustion events occurred."""
    pool = report.get("db_pool") or {}
    size, overflow = _num(pool.get("size")), _num(pool.get("max_overflow"))
    peak, events = _num(pool.get("checked_out_max")), _num(pool.get("exhaustion_events")) or 0
    capacity = size + overflow if size is not None and overflow is not None else None
    at_capacity = capacity is not None and peak is not None and peak >= capacity
    if not at_capacity and events <= 0:
        return None
    cap_text = f"{capacity:g}" if capacity is not None else "unknown"
    peak_text = f"{peak:g}" if peak is not None else "unknown"
    return Finding(
        "pool_saturation",
        f"Connection pool saturated: checked-out connections peaked at {peak_text} of "
        f"{cap_text} (size + max_overflow), with {events:g} exhaustion events.",
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
    cpu = _num((report.get("resources") or {}).get("cpu_avg_percent"))
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
    """Server CPU at or above the CPU-bound mark (percent of one core)."""
    cpu = _num((report.get("resources") or {}).get("cpu_avg_percent"))
    if cpu is None or cpu < SERVER_CPU_BOUND_PERCENT:
        return None
    return Finding(
        "server_cpu",
        f"Server CPU averaged {cpu:.1f}% (of one core; {SERVER_CPU_BOUND_PERCENT:g}% or more "
        "suggests a CPU-bound server).",
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
    """The /live canary: its p99 and worst gap; flagged when far above its idle value."""
    block = report.get("canary") or {}
    p99, gap, idle = (_num(block.get(k)) for k in ("p99_ms", "max_gap_ms", "idle_p99_ms"))
    if p99 is None:
        return None
    text = f"/live canary: p99 {p99:.1f} ms, worst gap {gap or 0:.0f} ms"
    text += f" (idle p99 {idle:.1f} ms)." if idle is not None else "."
    if block.get("flagged"):
        text += (
            f" Flagged: above {block.get('threshold_ms'):g} ms, a synchronous call is likely "
            "blocking the server's event loop. The generator shares the machine's cores with "
            "the server, so the bar is max(factor x idle, idle + a fixed margin)."
        )
    return Finding("canary_flagged" if block.get("flagged") else "canary", text)


def cost_hot_spots(report: Mapping[str, Any]) -> list[Finding]:
    """Endpoints whose estimated server CPU per request dwarfs the others' (password hashing)."""
    block = report.get("cost") or {}
    rows = {n: _num(e.get("cpu_ms_per_request")) for n, e in (block.get("endpoints") or {}).items()}
    rows = {n: v for n, v in rows.items() if v is not None}
    findings = []
    for name, ms in rows.items():
        others = sorted(v for n, v in rows.items() if n != name)
        median = others[len(others) // 2] if others else None
        if ms < HOT_SPOT_MIN_MS or (median is not None and ms < HOT_SPOT_FACTOR * max(median, 0.1)):
            continue
        share = (block["endpoints"][name] or {}).get("cpu_share_percent")
        versus = f", {ms / max(median, 0.1):.0f}x the median endpoint" if median is not None else ""
        findings.append(
            Finding(
                "cost_hot_spot",
                (
                    f"CPU hot spot: `{name}` costs about {ms:.0f} ms of server CPU per "
                    f"request{versus} ({share}% of the server's CPU; {block.get('method')} "
                    "estimate)."
                ),
            )
        )
    return findings


def pool_visibility(report: Mapping[str, Any]) -> Finding | None:
    """The pool figures look incomplete (never moved, or queueing with an idle reported pool)."""
    block = report.get("pool_visibility") or {}
    if block.get("complete") is not False:
        return None
    return Finding("pool_incomplete", f"Pool figures incomplete: {block.get('reason')}.")


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
