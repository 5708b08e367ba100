"""Ctrl-C (SIGINT) in the middle of a run: the partial report is whole JSON (it parses) and says
interrupted, and the exit code says the run was interrupted (pytest: non-zero; the runner: 130).

Locust's own case is tests/locust/test_locust_headless.py::
test_sigint_mid_run_leaves_whole_interrupted_report (a headless run, SIGINT, the report parsed,
non-zero exit); the runner's with a stand-in suite is tests/runner/test_runner.py::
test_interrupt_waits_for_the_report_renders_and_exits_130. These add the real pytest scenario and
the runner driving real Locust.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import runner_command, suite_command, talks_to, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _interrupt_mid_load(backend, run, *, load_s: float = 4.0) -> None:
    wait_until(lambda: talks_to(run.proc.pid, backend.port), 60, "the first connection")
    time.sleep(load_s)
    assert run.proc.poll() is None, "the run ended before Ctrl-C"
    run.interrupt()


def _check_partial(report: dict) -> None:
    assert report["interrupted"] is True and report["passed"] is False
    assert report["total_requests"] > 0 and report["duration_seconds"] > 0


def test_pytest_run_interrupted_keeps_a_whole_report(reference, background) -> None:
    """SIGINT during the sustained scenario: a whole report marked interrupted, a non-zero exit,
    long before the scenario's own end."""
    backend = reference()
    run = background(
        suite_command("pytest_load_test.py", "-k", "sustained_load", "--host", backend.url,
                      "--profile", "faults")
    )  # fmt: skip
    _interrupt_mid_load(backend, run, load_s=3.0)
    done = run.wait(60)
    assert done.returncode != 0, done.output[-3000:]
    report = done.reports["sustained_load.json"]
    _check_partial(report)
    assert report["duration_seconds"] < 10  # cut short: the scenario lasts 10 s
    assert "Traceback" not in done.output


def test_runner_interrupted_keeps_the_locust_report_and_exits_130(reference, background) -> None:
    """SIGINT to run_load_tests.sh during a real Locust preset: Locust writes its report (whole,
    interrupted), the runner renders it and exits 130."""
    backend = reference()
    run = background(
        runner_command("quick", "--host", backend.url, "--run-time", "60s", "--users", "3",
                       "--spawn-rate", "3", "--tags", "db_pool", "--profile", "faults")
    )  # fmt: skip
    _interrupt_mid_load(backend, run, load_s=5.0)
    done = run.wait(90)
    assert done.returncode == 130, done.output[-3000:]
    report = done.reports["locust_db_pool.json"]
    _check_partial(report)
    assert report["duration_seconds"] < 40
    assert list(done.results.glob("*/report.md")), "the runner did not render the partial run"
