"""loadkit.report: schema order, time series, run folder, atomic writes, redaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loadkit.measure.recording import RunRecorder
from loadkit.report import environment, redaction, run_folder, schema
from loadkit.report.writer import ReportError, read_report, write_report

SCHEMA_FIELDS = [
    "schema",
    "test_name",
    "tool",
    "started_at",
    "duration_seconds",
    "warmup_seconds",
    "interrupted",
    "ended",
    "target",
    "profile",
    "parameters",
    "total_requests",
    "requests_per_second",
    "success_rate_percent",
    "error_rate_percent",
    "late_starts",
    "response_time_avg_ms",
    "response_time_min_ms",
    "response_time_max_ms",
    "response_time_p50_ms",
    "response_time_p95_ms",
    "response_time_p99_ms",
    "status_codes",
    "errors_by_kind",
    "errors",
    "endpoints",
    "personas",
    "timeseries",
    "resources",
    "db_pool",
    "thresholds",
    "passed",
    "verdict",
    "reason",
    "environment",
    "concurrent_runs",
]
TIMESERIES_FIELDS = [
    "t",
    "requests",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "server_rss_mb",
    "server_cpu_percent",
    "pool_checked_out",
    "pool_open",
    "pool_overflow",
]
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2FkdGVzdC0wMDEifQ.c2lnbmF0dXJlLXZhbHVl"


def a_report(name: str = "test_example", **overrides: object) -> dict:
    rec = RunRecorder()
    rec.start(1000.0)
    rec.record("GET /api/sessions/{id}", 0.012, status=200, at=1000.1)
    rec.record("GET /api/sessions/{id}", 0.020, status=422, error_kind="http_4xx", at=1001.1)
    kwargs = {
        "test_name": name,
        "tool": "pytest",
        "started_at": 1000.0,
        "duration_s": 2.0,
        "recorder": rec,
        "target": "http://127.0.0.1:8000",
        "profile": "default",
        "parameters": {"users": 2, "seed": 42},
        **overrides,
    }
    return schema.build_report(**kwargs)


def test_report_has_every_schema_field_in_order() -> None:
    """build_report emits DESIGN.md's fields in its order, extras after them."""
    report = a_report(extra={"notes": "x"})
    assert list(report) == [*SCHEMA_FIELDS, "latency_distribution", "notes"]
    assert report["schema"] == schema.SCHEMA and report["started_at"].startswith(
        "1970-01-01T00:16:40"
    )
    assert report["environment"]["seed"] == 42 and report["environment"]["cpus"] == os.cpu_count()
    assert list(report["timeseries"][0]) == TIMESERIES_FIELDS
    assert report["errors_by_kind"]["http_4xx"] == 1 and report["error_rate_percent"] == 50.0


def test_unmeasured_blocks_are_unknown_not_zero() -> None:
    """Without monitors, resources and pool figures are None with a reason; no thresholds passes."""
    report = a_report()
    assert all(report["resources"][k] is None for k in schema.RESOURCE_FIELDS)
    assert report["resources"]["unavailable_reason"]
    assert report["db_pool"]["checked_out_max"] is None and report["db_pool"]["samples"] == 0
    assert report["passed"] is True


def test_passed_needs_every_threshold_and_no_interruption() -> None:
    """One failed threshold, or an interruption, makes the report fail."""
    ok = {"metric": "error_rate_percent", "limit": 1, "actual": 0.0, "passed": True}
    bad = {"metric": "response_time_p95_ms", "limit": 500, "actual": None, "passed": False}
    assert a_report(thresholds=[ok])["passed"] is True
    assert a_report(thresholds=[ok, bad])["passed"] is False
    assert a_report(thresholds=[ok], interrupted=True)["passed"] is False


def test_extra_fields_cannot_overwrite_the_schema() -> None:
    """An extra key that clashes with a schema field is refused."""
    with pytest.raises(ValueError, match="passed"):
        a_report(extra={"passed": True})


def test_server_series_joins_the_time_series_by_second() -> None:
    """Monitor samples land in their second; absent values stay None; later seconds are added."""
    series = [
        {"t": 1000.2, "server_rss_mb": 50.0, "server_cpu_percent": 10.0},
        {"t": 1000.7, "server_rss_mb": 52.0, "server_cpu_percent": 30.0},
        {"t": 1000.5, "pool_checked_out": 3, "pool_overflow": -2},
        {"t": 1003.1, "server_rss_mb": 55.0, "server_cpu_percent": None},
        {"t": 999.0, "server_rss_mb": 1.0},  # before t0: dropped
    ]
    rows = a_report(server_series=series)["timeseries"]
    assert [r["t"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["server_rss_mb"] == 52.0 and rows[0]["server_cpu_percent"] == 20.0
    assert rows[0]["pool_checked_out"] == 3 and rows[0]["requests"] == 1
    assert rows[1]["server_rss_mb"] is None and rows[1]["requests"] == 1
    assert rows[3] == {
        "t": 3, "requests": 0, "errors": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
        "server_rss_mb": 55.0, "server_cpu_percent": None, "pool_checked_out": None,
        "pool_open": None, "pool_overflow": None,
    }  # fmt: skip


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    """A written report reads back equal, named <test_name>.json, with no temporary file left."""
    report = a_report("test_rate_limit_enforcement[default]")
    path = write_report(report, tmp_path)
    assert path.name == "test_rate_limit_enforcement[default].json"
    assert read_report(path) == json.loads(json.dumps(report))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_report_written_from_finally_survives_an_exception(tmp_path: Path) -> None:
    """A run that raises mid-way still leaves its report, marked interrupted and failed."""
    rec = RunRecorder()
    rec.start()

    def run() -> None:
        try:
            rec.record("GET /health", 0.003, status=200)
            raise RuntimeError("backend went away mid-run")
        finally:
            report = schema.build_report(
                test_name="test_interrupted", tool="pytest", started_at=rec.t0, duration_s=0.5,
                recorder=rec, target="http://127.0.0.1:1", profile="ci", parameters={},
                interrupted=True,
            )  # fmt: skip
            write_report(report, tmp_path)

    with pytest.raises(RuntimeError):
        run()
    saved = read_report(tmp_path / "test_interrupted.json")
    assert saved["interrupted"] is True and saved["passed"] is False
    assert saved["total_requests"] == 1


def test_failed_write_keeps_the_previous_report_and_leaves_no_temp_file(tmp_path: Path) -> None:
    """A write that fails half-way (unserialisable value) leaves the old file whole."""
    path = write_report(a_report(), tmp_path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_report(a_report(extra={"bad": object()}), tmp_path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_readers_never_see_a_partial_report(tmp_path: Path) -> None:
    """While a report is rewritten repeatedly, every read parses as a whole JSON document."""
    reports = [a_report(extra={"pad": "x" * size}) for size in (10, 300_000, 50, 200_000)]
    path = write_report(reports[0], tmp_path)
    done = threading.Event()

    def writer() -> None:
        for i in range(40):
            write_report(reports[i % len(reports)], tmp_path)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    deadline = time.monotonic() + 30
    while not done.is_set() and time.monotonic() < deadline:
        assert len(json.loads(path.read_text())["pad"]) in (10, 300_000, 50, 200_000)
        reads += 1
    thread.join()
    assert reads > 0


def test_non_finite_numbers_become_null(tmp_path: Path) -> None:
    """NaN or infinity never reaches the JSON (it would not parse elsewhere)."""
    path = write_report(a_report(extra={"ratio": float("nan"), "top": float("inf")}), tmp_path)
    saved = json.loads(path.read_text())
    assert saved["ratio"] is None and saved["top"] is None


def test_read_report_refuses_other_files_in_one_line(tmp_path: Path) -> None:
    """Reading a non-report raises ReportError naming the file."""
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match="x.json"):
        read_report(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ReportError, match="x.json"):
        read_report(bad)


@pytest.mark.parametrize(
    "secret_text",
    [
        f"Authorization: Bearer {JWT}",
        f"token={JWT}",
        '{"email": "loadtest-001@example.com", "password": "LoadTest@2026"}',
        "password=LoadTest@2026&next=1",
        '{"refresh_token": "opaque-refresh-value-123"}',
        "postgresql://postgres:LoadTest@2026@127.0.0.1:5432/db",
        "bearer opaque-access-value-456",
    ],
)
def test_redact_strips_tokens_and_passwords(secret_text: str) -> None:
    """Redaction removes passwords, bearer and refresh tokens, JWTs and URL passwords."""
    clean = redaction.redact(secret_text)
    for secret in (JWT, "LoadTest@2026", "opaque-refresh-value-123", "opaque-access-value-456"):
        assert secret not in clean
    assert "REDACTED" in clean


def test_redact_keeps_ordinary_text() -> None:
    """Messages without secrets are left alone."""
    text = "HTTP 422 on GET /api/sessions/{id}: field 'limit' must be <= 1000"
    assert redaction.redact(text) == text


def test_written_report_has_no_secret_anywhere(tmp_path: Path) -> None:
    """Secrets in error messages, parameters or target never reach the file."""
    rec = RunRecorder()
    rec.start(1000.0)
    rec.record("POST /api/v1/login", 0.2, status=401, error_kind="http_4xx", at=1000.1,
               message=f'body {{"password": "LoadTest@2026"}} header Bearer {JWT}')  # fmt: skip
    report = a_report(recorder=rec, parameters={"password": "LoadTest@2026", "token": JWT})
    text = write_report(report, tmp_path).read_text()
    assert "LoadTest@2026" not in text and JWT not in text


def test_run_dir_is_created_once_and_shared_with_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_dir makes results/<stamp>_<label>/, exports it, and a child process reuses it."""
    monkeypatch.delenv("LOADTEST_RUN_DIR", raising=False)
    monkeypatch.setenv("LOADTEST_RESULTS_ROOT", str(tmp_path))
    first = run_folder.run_dir("pytest")
    assert first.parent == tmp_path and first.name.endswith("_pytest") and first.is_dir()
    assert os.environ["LOADTEST_RUN_DIR"] == str(first)
    assert run_folder.run_dir("locust") == first
    code = "from loadkit.report import run_folder; print(run_folder.run_dir('child'))"
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert child.stdout.strip() == str(first)


def test_run_dir_never_reuses_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs in the same second get two folders."""
    monkeypatch.delenv("LOADTEST_RUN_DIR", raising=False)
    a = run_folder.run_dir("quick", root=tmp_path)
    monkeypatch.delenv("LOADTEST_RUN_DIR")
    b = run_folder.run_dir("quick", root=tmp_path)
    assert a != b and a.is_dir() and b.is_dir()


def test_write_report_defaults_to_the_shared_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a directory, the report goes into LOADTEST_RUN_DIR."""
    monkeypatch.setenv("LOADTEST_RUN_DIR", str(tmp_path / "run"))
    assert write_report(a_report()) == tmp_path / "run" / "test_example.json"


def test_environment_info_reads_versions_without_importing() -> None:
    """Package versions come from metadata: locust is reported but not imported (gevent)."""
    info = environment.environment_info(seed=3)
    assert info["versions"]["locust"] and info["versions"]["httpx"]
    assert "locust" not in sys.modules and "gevent" not in sys.modules
    assert info["seed"] == 3 and info["python"] == ".".join(map(str, sys.version_info[:3]))
