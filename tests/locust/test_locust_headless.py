"""Headless Locust runs of load_test.py against the reference backend (Locust in a subprocess)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.locust.conftest import (
    REPO,
    locust_buckets_p95,
    locust_command,
    locust_env,
    read_json,
    run_locust,
)

pytestmark = pytest.mark.slow  # each runs Locust for 5-15 s

REPORT = "locust_all.json"
SCHEMA_FIELDS = (
    "schema", "test_name", "tool", "started_at", "duration_seconds", "warmup_seconds",
    "interrupted", "target", "profile", "parameters", "total_requests", "requests_per_second",
    "success_rate_percent", "error_rate_percent", "response_time_p95_ms", "status_codes",
    "errors_by_kind", "errors", "endpoints", "timeseries", "resources", "db_pool", "thresholds",
    "passed", "environment",
)  # fmt: skip


def _tolerance_ms(value: float) -> float:
    """Locust rounds response times to the ms below 100 ms and to 2 significant digits above."""
    return 0.51 if value < 100 else 0.051 * value


def test_headless_run_passes_with_server_memory_pool_and_exact_p95(backend, tmp_path: Path) -> None:
    """A short headless run exits 0; its report has the server's memory and pool and a p95 that
    agrees with one recomputed from Locust's own (rounded) buckets, over the same request count."""
    stats_file = tmp_path / "locust_stats"
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "20", "-r", "10", "-t", "12s",
        "--json-file", str(stats_file),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = read_json(tmp_path / REPORT)
    assert report["tool"] == "locust" and report["passed"] is True and not report["interrupted"]
    assert all(field in report for field in SCHEMA_FIELDS)
    assert report["resources"]["server_pid"] == backend.pid
    assert report["resources"]["memory_peak_mb"] > 0
    assert report["db_pool"]["samples"] > 0 and report["db_pool"]["size"] is not None
    assert not any("{" not in name and name.count("/") > 4 for name in report["endpoints"])
    total, p95 = locust_buckets_p95(json.loads(Path(f"{stats_file}.json").read_text()))
    assert report["total_requests"] == total == report["locust_stats"]["num_requests"]
    assert abs(report["response_time_p95_ms"] - p95) <= _tolerance_ms(p95)
    exact = f"exact: {report['total_requests']} requests"
    assert exact in done.stderr and f"p95 {report['response_time_p95_ms']:.1f}" in done.stderr
    assert (tmp_path / "locust_all.html").is_file() and (
        tmp_path / "locust_all_stats.csv"
    ).is_file()
    _check_thresholds_match_summary(report)
    _check_personas(report)


def _check_personas(report: dict) -> None:
    """Every request carries the persona that sent it: the personas block adds up to the totals,
    each persona with its own latency figures and requests/s."""
    personas = report["personas"]
    assert set(personas) == set(report["parameters"]["personas"]), personas.keys()
    assert sum(p["requests"] for p in personas.values()) == report["total_requests"]
    assert sum(p["failures"] for p in personas.values()) == sum(report["errors_by_kind"].values())
    reader = personas["RealisticTherapist"]
    assert reader["response_time_p95_ms"] > 0 and reader["requests_per_second"] > 0
    assert "probe GET /api/sessions/" in report["endpoints"]  # the prober's, apart from the reads


def _check_thresholds_match_summary(report: dict) -> None:
    """Each threshold's actual is the figure the report itself carries (judged on one summary)."""
    rows = {row["metric"]: row for row in report["thresholds"]}
    read = rows["response_time_p95_ms"]
    assert read["actual"] == report["endpoints"][read["endpoint"]]["response_time_p95_ms"]
    assert rows["error_rate_percent"]["actual"] == report["error_rate_percent"]
    cpu = rows.get("generator_cpu_percent")
    assert cpu is None or cpu["actual"] == report["resources"]["generator_cpu_percent"]


def test_unmeetable_threshold_fails_the_run(backend, tmp_path: Path) -> None:
    """A profile whose p95 limit cannot be met (0.001 ms) gives a non-zero exit and passed false."""
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[tight.thresholds.locust]\nresponse_time_p95_ms = 0.001\nerror_rate_percent = 1.0\n"
    )
    env = locust_env(tmp_path, LOADTEST_TARGETS=str(targets))
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "4", "-r", "4", "-t", "5s",
        "--profile", "tight", "--tags", "realistic", env=env,
    )  # fmt: skip
    assert done.returncode != 0
    report = read_json(tmp_path / "locust_realistic.json")
    assert report["passed"] is False and report["profile"] == "tight"
    failed = [t["metric"] for t in report["thresholds"] if not t["passed"]]
    assert failed == ["response_time_p95_ms"]


def test_sigint_mid_run_leaves_whole_interrupted_report(backend, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) in the middle of a run leaves a complete report marked interrupted, and a
    non-zero exit."""
    proc = subprocess.Popen(
        locust_command(backend.url, "--headless", "-u", "6", "-r", "6", "-t", "120s"),
        cwd=REPO,
        env=locust_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(8)  # let the run send requests
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    report = read_json(tmp_path / REPORT)
    assert report["interrupted"] is True and report["passed"] is False, err[-2000:]
    assert all(field in report for field in SCHEMA_FIELDS)
    assert report["total_requests"] > 0 and report["duration_seconds"] < 60
    assert report["resources"]["server_pid"] == backend.pid


def test_failed_login_stops_users_and_names_the_account(backend, tmp_path: Path) -> None:
    """A wrong password in --accounts is a failed login naming the account, and a non-zero exit."""
    accounts = tmp_path / "accounts.json"
    bad = "loadtest-001@example.com"
    good = [{"email": f"loadtest-{i:03d}@example.com", "password": "LoadTest@2026"} for i in (2, 3)]
    # the first two accounts are reserved for the rate-limit prober: the bad one is general
    accounts.write_text(json.dumps([*good, {"email": bad, "password": "Wrong@Password1"}]))
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "2", "-r", "2", "-t", "4s",
        "--tags", "realistic", "--accounts", str(accounts),
    )  # fmt: skip
    assert done.returncode != 0
    assert f"login failed for {bad}: HTTP 401" in done.stderr
    report = read_json(tmp_path / "locust_realistic.json")
    assert report["passed"] is False
    login = report["endpoints"]["POST /api/v1/login"]
    assert login["failures"] == login["requests"] == 1  # one login per account per process
    assert any(bad in e["message"] for e in report["errors"])
    assert set(report["endpoints"]) == {"POST /api/v1/login"}  # nobody went on unauthenticated


def test_host_outside_loopback_needs_yes(tmp_path: Path) -> None:
    """A host that is not this machine is refused in one line with exit 2 unless --yes is given."""
    done = run_locust("http://192.0.2.1:8000", tmp_path, "--headless", "-u", "1", "-t", "2s")
    assert done.returncode == 2
    assert "--yes" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("shape", ["step", "spike"])
def test_shape_option_drives_the_run(backend, tmp_path: Path, shape: str) -> None:
    """--shape step|spike runs a LoadTestShape sized by -u and -t, and the report names it."""
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "5", "-r", "5", "-t", "8s",
        "--tags", "health", "--shape", shape,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Shape test starting" in done.stderr
    report = read_json(tmp_path / "locust_health.json")
    assert report["parameters"]["shape"] == shape and report["total_requests"] > 0
