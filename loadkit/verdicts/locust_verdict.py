"""The thresholds of a Locust run (targets.toml's ``thresholds.locust``), judged on the summary
of its aggregate recorder that the report writes.

Pure functions, no Locust import. Figures:
- ``response_time_p95_ms``: the worst p95 of the read endpoints (everything but uploads, the
  token routes, whose cost is password hashing by design, and the defect prober's ``probe ...``
  requests), with the endpoint named in the row;
- ``upload_response_time_p95_ms``: p95 of POST /api/sessions/upload;
- ``error_rate_percent``: the service's errors, i.e. failed requests of every persona, less the
  probers' failures (rate-limit and defect prober) that a defect they named explains
  (`service_error_rate`; the report's own ``error_rate_percent`` field counts every failure,
  and ``error_sources`` splits the two);
- ``generator_cpu_percent`` (the busiest load-generator process);
- ``failed_logins``: at most 0; a persona that cannot log in did not test what it should have;
- ``defects``: at most 0 defect records (the probers', the logins' limiter ones).
A limit whose figure does not apply to this run (no upload was made, say) is skipped and listed as
such, never passed silently. Each row says in ``measured`` which figure, of which requests, it is.
"""

from __future__ import annotations

from loadkit.contract.api import LOGIN, REFRESH, SESSION_UPLOAD, SESSIONS, SIGNUP, endpoint
from loadkit.measure.histogram import latency_fields
from loadkit.measure.recording import RunRecorder
from loadkit.verdicts.slo import Profile, TargetsError, check

UPLOAD_ENDPOINT = endpoint("POST", SESSION_UPLOAD)
LOGIN_ENDPOINT = endpoint("POST", LOGIN)
TOKEN_ENDPOINTS = frozenset(endpoint("POST", p) for p in (LOGIN, REFRESH, SIGNUP))
THRESHOLD_GROUP = "locust"
PROBE_PREFIX = "probe "  # the defect prober names its requests "probe <METHOD> <route>"
PROBER_ENDPOINT = f"{PROBE_PREFIX}{endpoint('GET', SESSIONS)}"  # the rate-limit prober's
MEASURED = {
    "upload_response_time_p95_ms": f"p95 of {UPLOAD_ENDPOINT}",
    "error_rate_percent": "the service's errors: failed / all requests of every persona, less the "
    "probers' findings named as defects",
    "generator_cpu_percent": "CPU of the busiest load-generator process",
}


def is_read(name: str) -> bool:
    """Whether an endpoint counts as a read for the read p95 (not an upload, token or probe)."""
    return (
        name != UPLOAD_ENDPOINT
        and name not in TOKEN_ENDPOINTS
        and not name.startswith(PROBE_PREFIX)
    )


def _p95_ms(summary: dict, name: str) -> float | None:
    return (summary["endpoints"].get(name) or {}).get("response_time_p95_ms")


def worst_read_p95(summary: dict) -> tuple[str | None, float | None]:
    """(endpoint, p95 ms) of the slowest read endpoint of a report's summary; (None, None) when
    none was answered."""
    reads = [
        (p95, name)
        for name in summary["endpoints"]
        if is_read(name) and (p95 := _p95_ms(summary, name)) is not None
    ]
    if not reads:
        return None, None
    p95, name = max(reads)
    return name, p95


def _split(summary: dict, explained: int) -> tuple[int, int]:
    """(failures, of them the probers' findings): ``explained`` bounded by the failures of the
    probers' ``probe ...`` endpoints (their tallies also count the warm-up, which the recorder
    leaves out)."""
    endpoints = summary["endpoints"]
    failed = sum(item.get("failures", 0) for item in endpoints.values())
    probes = [item for name, item in endpoints.items() if name.startswith(PROBE_PREFIX)]
    return failed, min(explained, sum(item.get("failures", 0) for item in probes))


def service_error_rate(summary: dict, explained: int = 0) -> float | None:
    """Failed requests less the ``explained`` prober findings, in % of all requests (None: no
    request)."""
    total = summary.get("total_requests") or 0
    if not total:
        return summary.get("error_rate_percent")
    failed, findings = _split(summary, explained)
    return round(100 * (failed - findings) / total, 4)


def error_sources(summary: dict, explained: int) -> dict:
    """The report's split of the failures: the prober's findings (named as defects) and the
    service's own errors."""
    failed, findings = _split(summary, explained)
    return {
        "failures": failed,
        "prober_findings": findings,
        "service_errors": failed - findings,
        "service_error_rate_percent": service_error_rate(summary, explained),
    }


def actual_figures(summary: dict, generator_cpu_percent: float | None, explained: int = 0) -> dict:
    """The figures the locust thresholds are checked against (None: not measured in this run),
    all taken from the summary the report writes; ``explained``: the prober's findings."""
    _, read_p95 = worst_read_p95(summary)
    return {
        "response_time_p95_ms": read_p95,
        "upload_response_time_p95_ms": _p95_ms(summary, UPLOAD_ENDPOINT),
        "error_rate_percent": service_error_rate(summary, explained),
        "generator_cpu_percent": generator_cpu_percent,
    }


def failed_logins(summary: dict) -> int:
    """Login requests that failed, across every process merged into the summary's recorder."""
    return (summary["endpoints"].get(LOGIN_ENDPOINT) or {}).get("failures", 0)


def figures_now(recorder: RunRecorder) -> dict:
    """The part of `RunRecorder.summary` the thresholds read, without its time series (the live
    web UI asks every second or two, however long the run)."""
    total = recorder.total
    return {
        "total_requests": total,
        "error_rate_percent": round(100 * recorder.failures / total, 4) if total else None,
        "endpoints": {
            name: {"failures": item.failures, **latency_fields(item.hist)}
            for name, item in recorder.endpoints.items()
        },
    }


def thresholds(
    profile: Profile,
    source: RunRecorder | dict,
    generator_cpu_percent: float | None,
    explained: int = 0,
) -> tuple[list[dict], list[str]]:
    """(threshold rows, skipped limits with the reason) judged on ``source``: the report's own
    summary (`RunRecorder.summary`), or a recorder to summarise now (the live web UI);
    ``explained``: the probers' failures their named defects explain."""
    summary = figures_now(source) if isinstance(source, RunRecorder) else source
    try:
        limits = profile.limits(THRESHOLD_GROUP)
    except TargetsError:
        limits = {}
    actual = actual_figures(summary, generator_cpu_percent, explained)
    skippable = {
        "response_time_p95_ms": "no read endpoint",
        "upload_response_time_p95_ms": "no upload",
    }
    skipped = [
        f"{key}: {skippable[key]} was answered in this run"
        for key in limits
        if key in skippable and actual[key] is None
    ]
    used = {k: v for k, v in limits.items() if not (k in skippable and actual[k] is None)}
    rows = check(actual, used)
    worst, _ = worst_read_p95(summary)
    for row in rows:
        row["measured"] = MEASURED.get(row["metric"], "")
        if row["metric"] == "response_time_p95_ms" and worst:
            row["endpoint"] = worst
            row["measured"] = (
                f"p95 of the slowest read endpoint, {worst} (uploads, token routes and "
                "probe requests excluded)"
            )
    logins = failed_logins(summary)
    rows.append(
        {"metric": "failed_logins", "limit": 0, "actual": logins, "passed": logins == 0,
         "measured": f"failures of {LOGIN_ENDPOINT}"}
    )  # fmt: skip
    return rows, skipped


def defects_row(defects: list[dict]) -> dict:
    """The row that fails a run whose report names a defect (as a pytest problem does)."""
    ids = sorted({str(d.get("id")) for d in defects})
    return {"metric": "defects", "limit": 0, "actual": len(defects), "passed": not defects,
            "measured": "defect records named: " + (", ".join(ids) or "none")}  # fmt: skip


def verdict_text(rows: list[dict]) -> str:
    """One line: PASS, or FAIL naming the failed metrics."""
    failed = [r["metric"] for r in rows if not r["passed"]]
    return "PASS" if not failed else "FAIL: " + ", ".join(failed)
