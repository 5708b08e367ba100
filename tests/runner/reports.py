"""Run folders for the render and compare tests, written by loadkit itself.

`real_scenario` drives a short real load (loadkit.measure.engine) at the tiny server, with real
server and pool monitors, and writes the report with loadkit.report. `constant_scenario` feeds a
RunRecorder one fixed latency, for comparisons whose outcome must not depend on this machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from loadkit.measure import engine
from loadkit.measure.http import Request
from loadkit.measure.recording import RunRecorder
from loadkit.measure.trace import TracingRecorder
from loadkit.report import schema, writer
from loadkit.verdicts import slo
from loadkit.watch import monitor
from loadkit.watch import pool as pool_monitor


def _factory(slow_every: int, limited_every: int):
    def make(i: int) -> Request:
        if i % slow_every == 0:
            return Request("GET", "/slow", endpoint="POST /api/v1/login")
        if limited_every and i % limited_every == 1:
            return Request("GET", "/limited", endpoint="GET /api/sessions/")
        return Request("GET", "/items", endpoint="GET /api/sessions/{id}")

    return make


def real_scenario(
    run_dir: Path,
    url: str,
    name: str,
    *,
    slow_every: int = 10,
    limited_every: int = 0,
    duration_s: float = 2.2,
    concurrency: int = 4,
) -> dict[str, Any]:
    """Run a short closed-model load with monitors; write and return the report (the recorder
    traces each request, as the pytest scenarios' does)."""
    recorder = TracingRecorder()
    server = monitor.ServerMonitor(os.getpid(), interval_s=0.25)
    pool = pool_monitor.PoolMonitor(url, interval_s=0.25)
    started = time.time()
    server.start()
    pool.start()
    try:
        result = engine.run(
            engine.run_closed(
                url,
                _factory(slow_every, limited_every),
                concurrency=concurrency,
                recorder=recorder,
                requests=5000,
                duration_s=duration_s,
            )
        )
    finally:
        server.stop()
        pool.stop()
    summary = recorder.summary(duration_s=result.duration_s)
    limits = slo.load_profile("default").limits("read")
    built = schema.build_report(
        test_name=name,
        tool="pytest",
        started_at=started,
        duration_s=result.duration_s,
        recorder=recorder,
        target=url,
        profile="default",
        parameters={"concurrency": concurrency, "duration_s": duration_s},
        resources=server.summary(),
        db_pool=pool.summary(),
        server_series=monitor.server_series(server, pool),
        thresholds=slo.check(summary, limits),
    )
    writer.write_report(built, run_dir)
    return built


def constant_scenario(
    run_dir: Path,
    name: str,
    *,
    latency_ms: float,
    requests: int = 200,
    errors: int = 0,
    resources: dict | None = None,
    db_pool: dict | None = None,
) -> dict[str, Any]:
    """A report whose every request took ``latency_ms`` (the first ``errors`` answered 500)."""
    recorder = RunRecorder()
    t0 = time.time() - 10
    recorder.start(t0)
    for i in range(requests):
        failed = i < errors
        recorder.record(
            "GET /api/sessions/",
            latency_ms / 1000,
            status=500 if failed else 200,
            error_kind="http_5xx" if failed else None,
            at=t0 + i * 8 / requests,
        )
    built = schema.build_report(
        test_name=name,
        tool="pytest",
        started_at=t0,
        duration_s=8.0,
        recorder=recorder,
        target="http://127.0.0.1:9",
        profile="default",
        parameters={"requests": requests},
        resources=resources,
        db_pool=db_pool,
        thresholds=[],
    )
    writer.write_report(built, run_dir)
    return built
