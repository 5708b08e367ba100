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
    stack_of,
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
    """Locust rounds response times to the ms below 100 ms and to 2 significant digits above; our
    percentile is its 3-significant-digit bucket's midpoint (within 0.1%): both errors add up
    (75.487 ms against Locust's 76 is 0.513 ms apart, within 0.5 + 0.076)."""
    return (0.5 if value < 100 else 0.05 * value) + 0.001 * value


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


@pytest.mark.alone
def test_sigint_mid_run_leaves_whole_interrupted_report(backend, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) in the middle of a run leaves a complete report marked interrupted, and a
    non-zero exit."""
    proc = subprocess.Popen(
        locust_command(backend.url, "--headless", "-u", "6", "-r", "6", "-t", "120s"),
        cwd=REPO,
        env=locust_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(8)  # let the run send requests
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # once in CI under xdist: say where it hung
            pytest.fail(f"Locust still running 60 s after SIGINT; its stack:\n{stack_of(proc.pid)}")
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


def test_a_refused_account_is_dropped_and_its_users_move_on(backend, tmp_path: Path) -> None:
    """A wrong password in --accounts beside good ones: one warning naming the account, its users
    take another account and go on; the failed login still fails the run (exit 1)."""
    accounts = tmp_path / "accounts.json"
    bad = "loadtest-001@example.com"
    good = [
        {"email": f"loadtest-{i:03d}@example.com", "password": "LoadTest@2026"} for i in (2, 3, 4)
    ]
    # the first two accounts are reserved for the rate-limit prober: the bad one is general
    bad_entry = {"email": bad, "password": "Wrong@Password1"}
    accounts.write_text(json.dumps([*good[:2], bad_entry, good[2]]))
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "2", "-r", "2", "-t", "4s",
        "--tags", "realistic", "--accounts", str(accounts),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    dropped = [line for line in done.stderr.splitlines() if "that account is dropped" in line]
    assert len(dropped) == 1 and f"login failed for {bad}: HTTP 401" in dropped[0]
    assert "(3 of 4 left)" in dropped[0] and "no usable account" not in done.stderr
    report = read_json(tmp_path / "locust_realistic.json")
    assert report["passed"] is False
    login = report["endpoints"]["POST /api/v1/login"]
    assert login["failures"] == 1 and login["requests"] == 2  # once per account per process
    assert any(bad in e["message"] for e in report["errors"])
    went_on = {k: v for k, v in report["endpoints"].items() if k != "POST /api/v1/login"}
    assert went_on and not any(v["failures"] for v in went_on.values())  # its users went on


def test_every_account_refused_stops_the_run_at_once_with_one_line(backend, tmp_path: Path) -> None:
    """Every account of --accounts has a wrong password: the run stops at once (not after its
    30 s), with one line naming the accounts and the status, exit 2, and the report written."""
    accounts = tmp_path / "accounts.json"
    emails = [f"loadtest-{i:03d}@example.com" for i in (1, 2, 3)]
    accounts.write_text(json.dumps([{"email": e, "password": "Wrong@Password1"} for e in emails]))
    started = time.monotonic()
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "5", "-r", "5", "-t", "30s",
        "--accounts", str(accounts),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert time.monotonic() - started < 20
    ours = [line for line in done.stderr.splitlines() if "loadkit.locust" in line or
            line.startswith("load_test:")]  # fmt: skip
    said = [line for line in ours if "WARNING" in line or "ERROR" in line or "load_test:" in line]
    assert len(said) == 1, said
    assert said[0].startswith("load_test: no usable account: every account (3)")
    assert "HTTP 401" in said[0] and all(e in said[0] for e in emails)
    assert "Traceback" not in done.stderr
    report = read_json(tmp_path / "locust_all.json")
    assert report["endpoints"]["POST /api/v1/login"]["failures"] == 3


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
