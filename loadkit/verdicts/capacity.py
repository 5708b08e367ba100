"""Capacity verdicts, pure: does one step of the search pass, and what limited the rate.

A step passes when it meets the ``capacity`` group of targets.toml (p95, p99, error rate, the
achieved share of the offered rate, late starts) and its backlog did not grow over the steady
window. The limiting factor is read from the knee: the lowest failing step above the highest
passing one, in this order: the generator (its CPU, or late starts while the server was not
busy), the rate limit (429s, or 5xx on a limited route), the server's CPU (near its workers'
cores: a full pool is then its consequence), the event loop (the /live canary, which needs no
pool, slowed past its flag), the pool (every connection in use, or 503s), errors, else latency
(the server queued requests without any of those showing). No failing step: ``not_reached``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loadkit.measure.values import number

SLO_KEYS = {  # capacity.json's slo key -> targets.toml's thresholds.capacity key
    "p95_ms": "response_time_p95_ms",
    "p99_ms": "response_time_p99_ms",
    "error_rate_percent": "error_rate_percent",
    "achieved_ratio_min": "min:achieved_ratio",
    "late_start_percent": "late_start_percent",
}
DEFAULT_SLO = {"p95_ms": 500.0, "p99_ms": 1000.0, "error_rate_percent": 1.0,
               "achieved_ratio_min": 0.95, "late_start_percent": 2.0}  # fmt: skip
GENERATOR_CPU_PERCENT = 90.0
SERVER_BUSY_SHARE = 0.75  # server CPU at this share of its cores counts as CPU-bound
BACKLOG_MIN = 5  # requests: a backlog that grew by less is noise
BACKLOG_SHARE = 0.02  # ... or by less than this share of the window's requests
SERVER_FACTORS = ("server_cpu", "pool", "event_loop", "errors", "latency")


def slo_from(limits: Mapping[str, float]) -> dict:
    """The step criteria from a thresholds.capacity group (missing keys: DEFAULT_SLO)."""
    slo = dict(DEFAULT_SLO)
    for key, toml_key in SLO_KEYS.items():
        if number(limits.get(toml_key)) is not None:
            slo[key] = float(limits[toml_key])
    return slo


def backlog_grew(step: Mapping) -> bool:
    """Whether requests due but unanswered grew over the window by more than noise."""
    start, end = step.get("backlog_start"), step.get("backlog_end")
    if start is None or end is None:
        return False
    return end - start > max(BACKLOG_MIN, BACKLOG_SHARE * (step.get("requests") or 0))


def _over(value: object, limit: float) -> bool:
    return number(value) is None or value > limit  # unmeasured never passes


def reasons(step: Mapping, slo: Mapping) -> list[str]:
    """Why a step fails ([] when it passes), each reason with its figure and its limit."""
    out = []
    for key, label in (("p95_ms", "p95"), ("p99_ms", "p99")):
        if _over(step.get(key), slo[key]):
            out.append(f"{label} {step.get(key)} ms > {slo[key]:g} ms")
    if _over(step.get("error_rate_percent"), slo["error_rate_percent"]):
        out.append(f"errors {step.get('error_rate_percent')}% > {slo['error_rate_percent']:g}%")
    ratio = achieved_ratio(step)
    if ratio is None or ratio < slo["achieved_ratio_min"]:
        out.append(
            f"achieved {step.get('achieved_rps')} of {step.get('offered_rps')} rps "
            f"(ratio {ratio} < {slo['achieved_ratio_min']:g})"
        )
    late = late_percent(step)
    if late > slo["late_start_percent"]:
        out.append(f"late starts {late:.1f}% of requests > {slo['late_start_percent']:g}%")
    if backlog_grew(step):
        out.append(
            f"backlog grew from {step['backlog_start']} to {step['backlog_end']} requests "
            "over the window"
        )
    return out


def achieved_ratio(step: Mapping) -> float | None:
    """Achieved over offered rate (None when either is unknown)."""
    achieved, offered = number(step.get("achieved_rps")), number(step.get("offered_rps"))
    return round(achieved / offered, 3) if achieved is not None and offered else None


def late_percent(step: Mapping) -> float:
    """Late starts as a share of the step's requests (all it sent, when known), in percent."""
    sent = step.get("sent") or step.get("requests") or 0
    return 100.0 * (step.get("late_starts") or 0) / sent if sent else 0.0


def knee(steps: Sequence[Mapping]) -> Mapping | None:
    """The lowest failing step above the highest passing one (None when none failed there);
    an interrupted step is neither."""
    steps = [s for s in steps if not s.get("interrupted")]
    passed = [s["offered_rps"] for s in steps if s.get("passed")]
    floor = max(passed) if passed else 0.0
    above = [s for s in steps if not s.get("passed") and s["offered_rps"] > floor]
    return min(above, key=lambda s: s["offered_rps"]) if above else None


def _generator(step: Mapping, server_busy: bool) -> dict | None:
    cpu = number(step.get("generator_cpu_percent"))
    late = late_percent(step)
    if cpu is not None and cpu > GENERATOR_CPU_PERCENT:
        return {"generator_cpu_percent": cpu, "late_start_percent": round(late, 2)}
    # Late starts while answers fall behind (a growing backlog) are the server's doing: the
    # generator is then busy with thousands of waiting connections, not short of time.
    if late > DEFAULT_SLO["late_start_percent"] and not server_busy and not backlog_grew(step):
        return {"late_start_percent": round(late, 2), "generator_cpu_percent": cpu}
    return None


def _rate_limit(step: Mapping) -> dict | None:
    codes = step.get("status_codes") or {}
    refused, limited_5xx = int(codes.get("429", 0)), int(step.get("limited_5xx") or 0)
    if refused + limited_5xx == 0:
        return None
    return {
        "status_429": refused,
        "limited_route_5xx": limited_5xx,
        "error_rate_percent": step.get("error_rate_percent"),
    }


def _pool(step: Mapping) -> dict | None:
    used, capacity = number(step.get("pool_checked_out_max")), number(step.get("pool_capacity"))
    codes = step.get("status_codes") or {}
    if used is not None and capacity and used >= capacity:
        return {"pool_checked_out_max": used, "pool_capacity": capacity}
    if int(codes.get("503", 0)):
        return {"status_503": int(codes["503"]), "pool_checked_out_max": used}
    return None


def _loop(step: Mapping) -> dict | None:
    p99, limit = number(step.get("canary_p99_ms")), number(step.get("canary_threshold_ms"))
    if p99 is not None and limit is not None and p99 > limit:
        return {"canary_p99_ms": p99, "canary_threshold_ms": limit}
    return None


def server_busy(step: Mapping, cores: float) -> bool:
    """Whether the server's CPU was near what its processes can use (``cores``, 100% = one)."""
    cpu = number(step.get("server_cpu_percent"))
    return cpu is not None and cpu >= SERVER_BUSY_SHARE * 100 * cores


def generator_saturated(step: Mapping, server_cores: float) -> bool:
    """Whether the generator, not the server, shaped this step's figures."""
    return _generator(step, server_busy(step, server_cores)) is not None


def factor(steps: Sequence[Mapping], *, server_cores: float) -> dict:
    """limiting_factor {name, evidence, summary} from the steps; ``server_cores``: the cores the
    server can use (min(workers, the machine's cores) for a Python server)."""
    at = knee(steps)
    if steps and generator_saturated(steps[-1], server_cores):
        at = steps[-1]
    if at is None:
        whole = [s for s in steps if not s.get("interrupted")]
        top = max(whole, key=lambda s: s["offered_rps"]) if whole else {}
        return _named("not_reached", top, {}, "no step failed")
    busy = server_busy(at, server_cores)
    for name, judged in (
        ("generator", _generator(at, busy)),
        ("rate_limit", _rate_limit(at)),
        ("server_cpu", {"server_cores": server_cores} if busy else None),
        ("event_loop", _loop(at)),
        ("pool", _pool(at)),
    ):
        if judged is not None:
            return _named(name, at, judged, ", ".join(at.get("reasons") or []))
    errors = number(at.get("error_rate_percent")) or 0.0
    name = "errors" if any(r.startswith("errors ") for r in at.get("reasons") or []) else "latency"
    return _named(name, at, {"error_rate_percent": errors}, ", ".join(at.get("reasons") or []))


SUMMARIES = {
    "not_reached": "No step failed up to {offered_rps} rps: the limit was not reached",
    "generator": "At {offered_rps} rps the load generator saturated (its CPU {generator_cpu}%, "
    "late starts {late}%) while the server used {server_cpu}% CPU: the figures past this point "
    "describe the generator",
    "rate_limit": "At {offered_rps} rps the rate limit refused requests ({status_429} answered "
    "429, {limited_5xx} 5xx on limited routes): the limit, not the server, stopped the search",
    "event_loop": "At {offered_rps} rps GET /live (no dependencies) took p99 {canary} ms (held "
    "above {canary_limit} ms) while the server's CPU was {server_cpu}%: requests waited for the "
    "server itself (its event loop, or its one worker), not for a pool",
    "pool": "At {offered_rps} rps the database pool was the limit ({pool} connections in use)",
    "server_cpu": "At {offered_rps} rps the server's CPU was at {server_cpu}% (100% = one core) "
    "and it answered {achieved_rps} rps, p95 {p95_ms} ms ({pool} pool connections in use)",
    "errors": "At {offered_rps} rps the server answered {error_rate}% errors",
    "latency": "At {offered_rps} rps the server answered {achieved_rps} rps with p95 {p95_ms} ms "
    "and p99 {p99_ms} ms while its CPU was {server_cpu}%: requests queued at the server",
}


def _named(name: str, step: Mapping, evidence: dict, why: str) -> dict:
    """The factor's block: every figure of the step it rests on, and one sentence."""
    codes = step.get("status_codes") or {}
    figures = {k: step.get(k) for k in ("offered_rps", "achieved_rps", "p50_ms", "p95_ms",
               "p99_ms", "error_rate_percent", "server_cpu_percent", "generator_cpu_percent",
               "pool_checked_out_max", "late_starts", "requests", "canary_p99_ms")}  # fmt: skip
    text = SUMMARIES[name].format(
        offered_rps=step.get("offered_rps"), achieved_rps=step.get("achieved_rps"),
        p95_ms=step.get("p95_ms"), p99_ms=step.get("p99_ms"),
        server_cpu=step.get("server_cpu_percent"), generator_cpu=step.get("generator_cpu_percent"),
        late=round(late_percent(step), 1), status_429=codes.get("429", 0),
        limited_5xx=step.get("limited_5xx") or 0, pool=step.get("pool_checked_out_max"),
        error_rate=step.get("error_rate_percent"), canary=step.get("canary_p99_ms"),
        canary_limit=step.get("canary_threshold_ms"),
    )  # fmt: skip
    summary = text + (f" (step failed: {why})." if why and name != "not_reached" else ".")
    return {"name": name, "evidence": {**figures, **evidence}, "summary": summary}
