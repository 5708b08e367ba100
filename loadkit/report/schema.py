"""The run report: one JSON schema for every run, built from a recorder and the
monitors' blocks, with the verdict beside ``passed``."""

from __future__ import annotations

from collections.abc import Iterable

from loadkit.measure.recording import RunRecorder
from loadkit.measure.values import iso_utc
from loadkit.report import distribution, ending, run_lock, scenario_verdict
from loadkit.report.environment import environment_info

SCHEMA = "therapybridge-loadtest/1"
RESOURCE_FIELDS = (
    "server_pid",
    "memory_initial_mb",
    "memory_peak_mb",
    "memory_growth_mb",
    "cpu_avg_percent",
    "cpu_samples",
    "generator_cpu_percent",
    "generator_saturated",
)
DB_POOL_FIELDS = (
    "size",
    "max_overflow",
    "checked_out_max",
    "open_max",
    "capacity",
    "overflow_max",
    "exhaustion_events",
    "samples",
)
SERVER_SERIES_FIELDS = (
    "server_rss_mb",
    "server_cpu_percent",
    "pool_checked_out",
    "pool_open",
    "pool_overflow",
)


def _resources_block(resources: dict | None) -> dict:
    if resources is None:
        return {
            **dict.fromkeys(RESOURCE_FIELDS),
            "unavailable_reason": "server resources were not measured",
        }
    return {**dict.fromkeys(RESOURCE_FIELDS), **resources}


def _db_pool_block(db_pool: dict | None) -> dict:
    if db_pool is None:
        return {
            **dict.fromkeys(DB_POOL_FIELDS),
            "samples": 0,
            "unavailable_reason": "the database pool was not sampled",
        }
    return {**dict.fromkeys(DB_POOL_FIELDS), **db_pool}


def _empty_second(t: int) -> dict:
    keys = ("p50_ms", "p95_ms", "p99_ms")
    return {"t": t, "requests": 0, "errors": 0, **dict.fromkeys(keys)}


def _server_by_second(
    server_series: Iterable[dict], t0: float, interval_s: int = 1
) -> dict[int, dict]:
    """Server samples grouped by interval since t0 (keyed by its first second): CPU averaged,
    the others at their maximum."""
    groups: dict[int, dict[str, list[float]]] = {}
    for row in server_series:
        offset = row["t"] - t0
        if offset < 0:
            continue
        start = int(offset) // interval_s * interval_s
        group = groups.setdefault(start, {key: [] for key in SERVER_SERIES_FIELDS})
        for key in SERVER_SERIES_FIELDS:
            if row.get(key) is not None:
                group[key].append(row[key])
    out = {}
    for sec, group in groups.items():
        out[sec] = {key: (max(v) if v else None) for key, v in group.items()}
        cpu = group["server_cpu_percent"]
        out[sec]["server_cpu_percent"] = round(sum(cpu) / len(cpu), 2) if cpu else None
    return out


def merge_timeseries(
    rows: list[dict], server_series: Iterable[dict], t0: float, interval_s: int = 1
) -> list[dict]:
    """Join request rows and server samples (wall ``t``) by interval since t0; missing values
    None."""
    server = _server_by_second(server_series, t0, interval_s)
    by_t = {row["t"]: dict(row) for row in rows}
    last = max([*by_t, *server, -1])
    merged = []
    for sec in range(0, last + 1, interval_s):
        row = by_t.get(sec) or _empty_second(sec)
        row.update(server.get(sec) or dict.fromkeys(SERVER_SERIES_FIELDS))
        merged.append(row)
    return merged


def _measured(row: dict, summary: dict) -> dict:
    """The row with ``measured`` saying what it is, when the caller did not say: the report's
    summary figure (all requests, every endpoint) when the actual is that figure."""
    if row.get("measured"):
        return row
    value = summary.get(str(row.get("metric")))
    if value is not None and value == row.get("actual"):
        row["measured"] = f"the summary of all {summary.get('total_requests')} requests"
    elif str(row.get("metric")) in summary:
        row["measured"] = "a figure the scenario computed itself (differs from the summary's)"
    else:
        row["measured"] = "the scenario's own check"
    return row


def build_report(
    *,
    test_name: str,
    tool: str,
    started_at: float,
    duration_s: float,
    recorder: RunRecorder,
    target: str,
    profile: str,
    parameters: dict,
    warmup_s: float = 0.0,
    interrupted: bool = False,
    resources: dict | None = None,
    db_pool: dict | None = None,
    server_series: list[dict] | None = None,
    thresholds: list[dict] | None = None,
    extra: dict | None = None,
    summary: dict | None = None,
) -> dict:
    """A report with every schema field in the schema's order; ``extra`` keys come last.

    ``summary`` is the recorder's summary when the caller built it already (and judged its
    thresholds on it): the report is written with that one, not a second one."""
    summary = dict(summary if summary is not None else recorder.summary(duration_s=duration_s))
    t0 = recorder.t0 if recorder.t0 is not None else started_at
    interval = summary.pop("timeseries_interval_s", 1)
    parameters = {**parameters, "timeseries_interval_s": interval}
    summary["timeseries"] = merge_timeseries(
        summary["timeseries"], server_series or [], t0, interval
    )
    thresholds = [_measured(dict(t), summary) for t in thresholds or []]
    fine = distribution.fine_timeseries(
        getattr(recorder, "samples", None) or [], server_series or [], t0, duration_s
    )
    charts = {"latency_distribution": distribution.latency_distribution(recorder.overall)}
    if fine is not None:
        charts["timeseries_fine"] = fine
    report = {
        "schema": SCHEMA,
        "test_name": test_name,
        "tool": tool,
        "started_at": iso_utc(started_at),
        "duration_seconds": round(duration_s, 3),
        "warmup_seconds": warmup_s,
        "interrupted": interrupted,
        "ended": ending.of(interrupted),  # completed, SIGINT, SIGTERM, SIGHUP (report/ending)
        "target": target,
        "profile": profile,
        "parameters": dict(parameters),
        **summary,
        "resources": _resources_block(resources),
        "db_pool": _db_pool_block(db_pool),
        "thresholds": thresholds,
        "passed": all(t.get("passed") is True for t in thresholds) and not interrupted,
        "environment": environment_info(seed=parameters.get("seed")),
        "concurrent_runs": run_lock.overlapping(),  # other runs against the target meanwhile
        **charts,
    }
    clash = set(extra or {}) & (set(report) | {"verdict", "reason"})
    if clash:
        raise ValueError(f"extra report fields clash with the schema: {sorted(clash)}")
    report.update(extra or {})
    verdict, reason = scenario_verdict.judge(report)
    ordered = {}
    for key, value in report.items():
        ordered[key] = value
        if key == "passed":
            ordered["verdict"], ordered["reason"] = verdict, reason
    return ordered
