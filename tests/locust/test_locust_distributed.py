"""Distributed Locust (--processes 2): workers' exact histograms merge on the master."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reference_backend.process import free_port
from tests.locust.conftest import locust_buckets_p95, read_json, run_locust

pytestmark = pytest.mark.slow  # Locust with two worker processes for 10 s


def _two_workers(backend, tmp_path: Path, *args: str):
    """Headless Locust with two worker processes on a master port of its own (not 5557: another
    Locust on this machine must not join our master); spawned all at once."""
    port = str(free_port())
    rate = args[args.index("-u") + 1]
    return run_locust(backend.url, tmp_path, "--headless", "-r", rate, "--processes", "2",
                      "--master-bind-port", port, "--master-port", port, *args)  # fmt: skip


def test_two_worker_processes_merge_into_one_report(backend, tmp_path: Path) -> None:
    """With two worker processes the report counts every request Locust counted, has the server's
    figures from the one monitor on the master, names two workers, and its per-persona figures add
    up to the total."""
    stats_file = tmp_path / "locust_stats"
    done = _two_workers(backend, tmp_path, "-u", "10", "-t", "10s", "--json-file", str(stats_file))
    assert done.returncode == 0, done.stderr[-3000:]
    report = read_json(tmp_path / "locust_all.json")
    total, p95 = locust_buckets_p95(json.loads(Path(f"{stats_file}.json").read_text()))
    assert report["total_requests"] == total == report["locust_stats"]["num_requests"]
    assert report["parameters"]["workers"] == 2
    assert report["resources"]["server_pid"] == backend.pid
    assert report["resources"]["cpu_samples"] > 0
    assert abs(report["response_time_p95_ms"] - p95) <= max(0.51, 0.051 * p95)
    assert "report passed" in done.stderr and "report FAILED" not in done.stderr
    personas = report["personas"]  # shipped in the workers' deltas, merged on the master
    assert sum(p["requests"] for p in personas.values()) == report["total_requests"], personas
    assert "RealisticTherapist" in personas


def test_workers_without_a_usable_account_stop_the_master_with_exit_2(backend, tmp_path) -> None:
    """Every account has a wrong password, two worker processes: each worker stops its users and
    tells the master, which stops the run at once (not after its 40 s) with exit 2 and one line;
    the report of what was sent is written."""
    accounts = tmp_path / "accounts.json"
    emails = [f"loadtest-{i:03d}@example.com" for i in range(1, 7)]
    accounts.write_text(json.dumps([{"email": e, "password": "Wrong@Password1"} for e in emails]))
    started = time.monotonic()
    done = _two_workers(backend, tmp_path, "-u", "4", "-t", "40s", "--accounts", str(accounts))
    assert done.returncode == 2, done.stderr[-3000:]
    assert time.monotonic() - started < 30, done.stderr[-3000:]
    assert "load_test: no worker has a usable account (2 of 2)" in done.stderr, done.stderr[-3000:]
    assert "HTTP 401" in done.stderr and "Traceback" not in done.stderr
    report = read_json(tmp_path / "locust_all.json")
    assert report["endpoints"]["POST /api/v1/login"]["failures"] >= 2
