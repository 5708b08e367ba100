"""Writing a Locust run's report: its name, parameters, the summary
line, the final CSV, and the checkpoints of a long run.

A checkpoint is the report written while the test runs (every ``--checkpoint-interval`` seconds, by
a greenlet on the master or the local runner): the same JSON with ``checkpoint: true`` and
report.md rendered from it, both written atomically, so a crash or ``kill -9`` loses at most one
interval. The final report (``checkpoint: false``) replaces it.
"""

from __future__ import annotations

import time
from pathlib import Path

from locust.runners import MasterRunner

from loadkit.contract import api
from loadkit.locust_plugin import report_page, users
from loadkit.locust_plugin.state import EXIT_FAILED, STATE, logger
from loadkit.verdicts import drift


def report_name(options: object) -> str:
    """--report-name, else locust_<tags joined> (locust_all without tags)."""
    if getattr(options, "report_name", None):
        return options.report_name
    tags = sorted(getattr(options, "tags", None) or [])
    return "locust_" + ("_".join(tags) if tags else "all")


def run_parameters(environment: object) -> dict:
    options = environment.parsed_options
    runner = environment.runner
    return {
        "users": options.num_users,
        "spawn_rate": options.spawn_rate,
        "run_time": options.run_time,
        "tags": options.tags,
        "exclude_tags": options.exclude_tags,
        "shape": options.shape,
        "personas": sorted(cls.__name__ for cls in environment.user_classes),
        "workers": runner.worker_count if isinstance(runner, MasterRunner) else 1,
        "accounts": options.accounts or "default",
        "upload_size": getattr(options, "upload_size", None),
    }


def _locust_totals(environment: object) -> dict:
    total = environment.runner.stats.total
    return {"num_requests": total.num_requests, "num_failures": total.num_failures}


def _build(environment: object, checkpoint: bool) -> dict:
    run = STATE.run
    interval = getattr(environment.parsed_options, "checkpoint_interval", 0) or 0
    marks = {"checkpoint": checkpoint, "checkpoint_interval_s": interval or None}
    if checkpoint:
        marks["checkpoint_written_at"] = round(time.time(), 3)
    report = run.report(
        test_name=report_name(environment.parsed_options),
        target=environment.host or "",
        parameters=STATE.parameters or run_parameters(environment),
        extra={
            "locust_stats": _locust_totals(environment),
            **_login_findings(),
            "tokens": token_counts(run.recorder.endpoints, environment),
            **marks,
        },
    )
    report["drift"] = drift_of(run, report)
    return report


def drift_of(run: object, report: dict) -> dict:
    """The drift block: latency and server RSS slopes per interval, generator RSS, leak verdict."""
    t0 = run.recorder.t0 or run.started_at or 0.0
    return drift.drift_block(
        report["timeseries"],
        interval_s=report["parameters"].get("timeseries_interval_s", 1),
        warmup_s=run.warmup_s,
        generator=run.server.generator_rss(t0) if run.server is not None else (),
    )


def token_counts(endpoints: dict, environment: object) -> dict:
    """Login and refresh requests the run sent (every process: they are requests like any other;
    a 429 counts as no failure, it is waited out), and the tokens this process's manager got from
    them (None on a master: its workers hold the tokens)."""
    out = {}
    for key, path in (("login", api.LOGIN), ("refresh", api.REFRESH)):
        item = endpoints.get(api.endpoint("POST", path))
        out[f"{key}_requests"] = 0 if item is None else item.requests
        out[f"{key}_failures"] = 0 if item is None else item.failures
    manager = getattr(users.SHARED, "tokens", None)
    local = manager is not None and not isinstance(environment.runner, MasterRunner)
    out["logins"] = manager.logins if local else None
    out["refreshes"] = manager.refreshes if local else None
    return out


def write_checkpoint(environment: object) -> Path | None:
    """The report so far, marked as a checkpoint, and report.md rendered from it."""
    run = STATE.run
    if run is None or not run.running or run.started_at is None or STATE.directory is None:
        return None
    path = run.write(_build(environment, checkpoint=True), STATE.directory)
    report_page.render_now(STATE.directory)
    return path


def write_report(environment: object) -> Path | None:
    """Write the report now; set the exit code from its verdict."""
    run = STATE.run
    if run is None or run.started_at is None or STATE.directory is None:
        return None
    report = _build(environment, checkpoint=False)
    path = run.write(report, STATE.directory)
    verdict_code = 0 if report["passed"] else EXIT_FAILED
    environment.process_exit_code = STATE.forced_exit or verdict_code
    verdict = "passed" if report["passed"] else "FAILED"
    state = "interrupted" if report["interrupted"] else "complete"
    named = sorted({str(d.get("id")) for d in report.get("defects") or []})
    found = f"; defects: {', '.join(named)}" if named else ""
    lines = f"report {verdict}: {path} ({state}){found}\n{summary_line(report)}"
    if lines != STATE.last_logged:
        STATE.last_logged = lines
        for line in lines.splitlines():
            logger.info("%s", line)
    return path


def _login_findings() -> dict:
    """The limiter defects and the limit-shaped line this process's token manager knows of."""
    manager = getattr(users.SHARED, "tokens", None)
    if manager is None:
        return {}
    shaped = manager.limit_shaped()
    found = {"defects": manager.defects(), "limit_shaped": shaped is not None}
    return found | ({"limit_shaped_reason": shaped} if shaped else {})


def summary_line(report: dict) -> str:
    """Our exact figures in one line, beside Locust's approximated table."""

    def ms(key: str) -> str:
        value = report.get(f"response_time_{key}_ms")
        return "n/a" if value is None else f"{value:.1f}"

    res, pool = report.get("resources") or {}, report.get("db_pool") or {}
    failed = [t["metric"] for t in report.get("thresholds") or [] if not t.get("passed")]
    server = (
        f"server RSS {res['memory_initial_mb']:.1f}->{res['memory_peak_mb']:.1f} MB peak, "
        f"CPU {res['cpu_avg_percent']:.1f}%"
        if res.get("memory_peak_mb") is not None and res.get("cpu_avg_percent") is not None
        else f"server figures unavailable ({res.get('unavailable_reason', 'no server process')})"
    )
    return (
        f"exact: {report.get('total_requests', 0)} requests, "
        f"{report.get('error_rate_percent') or 0:.2f}% errors{_split_text(report)}, "
        f"p50 {ms('p50')} / p95 {ms('p95')} / "
        f"p99 {ms('p99')} / max {ms('max')} ms; {server}; pool checked-out max "
        f"{pool.get('checked_out_max', 'n/a')}; thresholds failed: {', '.join(failed) or 'none'}"
    )


def _split_text(report: dict) -> str:
    """Which failures are the probers' findings (the rate-limit prober's and DefectProber's) and
    which the service's own errors ("" when the probers found nothing)."""
    split = report.get("error_sources") or {}
    if not split.get("prober_findings"):
        return ""
    return (
        f" ({split['prober_findings']} of {split['failures']} failures are the probers' "
        f"findings, named as defects; the service's own errors: "
        f"{split['service_errors']}, {split['service_error_rate_percent'] or 0:.2f}%)"
    )


def final_csv() -> None:
    """Rewrite Locust's CSV from the final stats (its writer lags up to a second), then close it."""
    if STATE.csv is None:
        return
    if STATE.csv_greenlet is not None:
        STATE.csv_greenlet.kill(block=True)
    w = STATE.csv
    for kind, columns in (
        ("requests", w.requests_csv_columns),
        ("failures", w.failures_columns),
        ("exceptions", w.exceptions_columns),
    ):
        handle, csv_writer = getattr(w, f"{kind}_csv_filehandle"), getattr(w, f"{kind}_csv_writer")
        handle.seek(0)
        handle.truncate()
        csv_writer.writerow(columns)
        getattr(w, f"_{kind}_data_rows")(csv_writer)
    w.close_files()
    STATE.csv = None
