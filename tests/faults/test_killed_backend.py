"""The backend is killed in the middle of a run: the run ends by itself within its time-outs, the
failed requests are connection errors (not latency), the report is written with passed false, and
the exit code is non-zero. Once for the pytest suite, once for headless Locust.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.conftest import locust_command, suite_command, talks_to, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

LOAD_BEFORE_KILL_S = 4.0


def _kill_mid_run(backend, tool) -> None:
    """SIGKILL the backend's process group a few seconds after the tool first connects to it."""
    wait_until(lambda: talks_to(tool.proc.pid, backend.port), 60, "the tool's first connection")
    time.sleep(LOAD_BEFORE_KILL_S)
    assert tool.proc.poll() is None, "the run ended before the backend was killed"
    backend._signal(signal.SIGKILL)
    backend.popen.wait(10)


def _check_report(report: dict) -> None:
    """Passed false; requests answered before the kill and connection errors after it; the
    failures carry no latency and no status."""
    assert report["passed"] is False and report["interrupted"] is False
    by_kind = report["errors_by_kind"]
    answered = sum(report["status_codes"].values())
    assert answered > 0 and by_kind["connection"] > 0, (report["status_codes"], by_kind)
    assert answered + by_kind["connection"] + by_kind["timeout"] == report["total_requests"]
    assert by_kind["http_5xx"] == 0, by_kind
    assert all(e["status"] is None for e in report["errors"] if e["kind"] == "connection")
    assert any(e["kind"] == "connection" for e in report["errors"]), report["errors"]


def test_pytest_suite_survives_a_killed_backend(reference, background) -> None:
    """The sustained-load scenario (10 s at 10/s) with its backend SIGKILLed after ~4 s of load:
    it runs to its own end, counts connection errors, writes a failing report and exits 1."""
    backend = reference()
    run = background(
        suite_command("pytest_load_test.py", "-k", "sustained_load", "--host", backend.url,
                      "--profile", "faults", "--server-pid", str(backend.pid))
    )  # fmt: skip
    _kill_mid_run(backend, run)
    done = run.wait(90)
    assert done.returncode == 1, done.output[-3000:]
    report = done.reports["sustained_load.json"]
    _check_report(report)
    assert report["duration_seconds"] < 10 + 5  # the scenario's 10 s plus its drain, no hang
    assert "Traceback" not in done.output


def test_locust_survives_a_killed_backend(reference, background) -> None:
    """A headless Locust run (-t 10s) whose backend is SIGKILLed after ~4 s: it stops at -t,
    counts connection errors, writes a failing report and exits non-zero."""
    backend = reference()
    run = background(
        locust_command("--host", backend.url, "-u", "4", "-r", "4", "-t", "10s", "--tags",
                       "db_pool", "--profile", "faults", "--request-timeout", "5")
    )  # fmt: skip
    _kill_mid_run(backend, run)
    done = run.wait(90)
    assert done.returncode != 0, done.output[-3000:]
    _check_report(done.reports["locust_db_pool.json"])
    assert done.seconds < 10 + 30, done.seconds  # start-up, -t 10s, the report: no hang
    assert "Traceback" not in done.output
