"""TEST INPUT for the readiness tests: a capacity.json built from the agreed schema
(notes/capacity-schema.md), not measured by any capacity search.

`capacity_report` writes it with loadkit's schema and writer into a run folder, with placeholder
capacity charts, and says in its ``parameters`` that it is test input. The steps describe a server
whose latency rises past 40 req/s: the knee is between 40 (passed) and 60 (failed).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from PIL import Image

from loadkit.measure.recording import RunRecorder
from loadkit.report import schema, writer

LABEL = "test input built by tests/runner/readiness_input.py from the capacity schema; not measured"
SLO = {"p95_ms": 500, "p99_ms": 1000, "error_rate_percent": 1.0, "achieved_ratio_min": 0.95,
       "late_start_percent": 2.0}  # fmt: skip


def _step(offered: float, achieved: float, p95: float, cpu: float, pool: int, **more: Any) -> dict:
    row = {
        "offered_rps": offered, "achieved_rps": achieved, "p50_ms": p95 / 3, "p95_ms": p95,
        "p99_ms": p95 * 1.5, "error_rate_percent": 0.0, "late_starts": 0, "abandoned": 0,
        "canary_p99_ms": 4.0 + p95 / 100,
        "server_cpu_percent": cpu, "pool_checked_out_max": pool, "passed": True, "reasons": [],
        "window_s": 10, "requests": int(achieved * 10), "phase": "grow",
    }  # fmt: skip
    return row | more


STEPS = [
    _step(10, 10.0, 20, 25.0, 2),
    _step(20, 19.9, 30, 45.0, 3),
    _step(40, 39.6, 120, 84.0, 4, phase="bisect"),
    _step(
        60,
        51.0,
        900,
        99.0,
        5,
        passed=False,
        p99_ms=2100,
        late_starts=40,
        reasons=["p95_ms 900 > 500", "achieved 51 < 0.95 x 60"],
    ),  # fmt: skip
    _step(
        80, 50.0, 2500, 99.5, 5, passed=False, error_rate_percent=3.0, reasons=["p95_ms 2500 > 500"]
    ),  # fmt: skip
]
LIMITING = {
    "name": "server_cpu",
    "evidence": {"server_cpu_percent": 99.0, "offered_rps": 60, "achieved_rps": 51.0},
    "summary": "server CPU reached 99% of one core at 60 req/s offered (51 achieved)",
}


def capacity_fields(**over: Any) -> dict[str, Any]:
    """The capacity-specific top-level fields, with ``over`` replacing any of them."""
    fields = {
        "max_sustainable_rps": 40,
        "slo": dict(SLO),
        "steps": copy.deepcopy(STEPS),
        "limiting_factor": copy.deepcopy(LIMITING),
        "concurrent_therapists": 80,
        "search_ended": "first failing step after last pass",
    }
    return fields | over


def capacity_report(
    run_dir: Path,
    *,
    charts: bool = True,
    db_pool: dict | None = None,
    workers: int = 1,
    **over: Any,
) -> dict[str, Any]:
    """Write capacity.json (and, with ``charts``, placeholder PNGs) into ``run_dir``; return it."""
    recorder = RunRecorder()
    started = time.time() - 60
    recorder.start(started)
    built = schema.build_report(
        test_name="capacity",
        tool="pytest",
        started_at=started,
        duration_s=60.0,
        recorder=recorder,
        target="http://127.0.0.1:9",
        profile="default",
        parameters={"think_time_s": 2.0, "server_workers": workers, "test_input": LABEL},
        db_pool=db_pool or {"size": 5, "max_overflow": 10, "capacity": 15, "samples": 50},
        extra=capacity_fields(**over),
    )
    writer.write_report(built, run_dir)
    for name in ("capacity_rate.png", "capacity_latency.png") if charts else ():
        Image.new("RGB", (200, 120), "white").save(run_dir / name)
    return built
