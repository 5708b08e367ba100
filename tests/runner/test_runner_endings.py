"""run_load_tests.sh: help and tags, bad input, not-run scenarios, interrupts, concurrent runs.

Real runner processes against the tiny loopback server with a fake pytest suite (LOADTEST_SUITE);
signals are real (sent to the runner's process group as a terminal would). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from loadkit.contract import tags
from loadkit.report import render
from tests.runner.test_runner import (
    RUNNER,
    SLEEPY_SUITE,
    _env,
    fake_suite,
    one_line,
    run_folders,
    run_runner,
)
from tests.runner.tiny_server import serve

NEVER_STARTS_SUITE = """
import json, os
from pathlib import Path
import pytest

def test_first():
    run = Path(os.environ["LOADTEST_RUN_DIR"])
    body = {"schema": "therapybridge-loadtest/1", "test_name": "first", "total_requests": 0,
            "passed": True}
    (run / "first.json").write_text(json.dumps(body))

def test_never_starts():
    pytest.exit("no usable account for this scenario", returncode=2)
"""


def test_help_lists_the_tags_the_locustfile_defines(tmp_path: Path) -> None:
    """--help names every tag read from load_test.py (rate_limit, db_pool), none hyphenated."""
    proc, _ = run_runner(tmp_path, "--help")
    assert proc.returncode == 0
    assert ", ".join(tags.known_tags()) in proc.stdout
    assert "rate-limit" not in proc.stdout and "db-pool" not in proc.stdout


def test_unknown_tag_is_one_line_with_the_valid_ones(tmp_path: Path) -> None:
    """--tags rate-limit: one line listing the valid tags, exit 2, no run folder."""
    proc, _ = run_runner(tmp_path, "quick", "--tags", "realistic,rate-limit")
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "unknown tag rate-limit" in line and "rate_limit" in line and "db_pool" in line
    assert run_folders(tmp_path) == []


def test_malformed_accounts_file_is_refused_before_the_backend(tmp_path: Path) -> None:
    """An accounts file that is not a list of {email, password}: one line, exit 2, no run folder
    (so no backend started and no empty report), and the password never printed."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text('[{"email": "a@example.test", "pass": "hunter2-secret"}]')
    proc, seconds = run_runner(tmp_path, "quick", "--accounts", str(accounts))
    assert proc.returncode == 2 and seconds < 30
    line = one_line(proc.stderr)
    assert "accounts" in line and "hunter2-secret" not in proc.stdout + proc.stderr
    assert run_folders(tmp_path) == [] and "reference backend" not in proc.stdout


def test_all_lists_a_scenario_that_never_started(tmp_path: Path) -> None:
    """`all`: a scenario exiting 2 without a report is in run.json as not_run with its exit line,
    in report.md's verdicts, and on its one terminal line; the terminal summary says the same."""
    suite = fake_suite(tmp_path, NEVER_STARTS_SUITE)
    with serve() as (url, _):
        proc, _ = run_runner(tmp_path, "all", "--host", url, LOADTEST_SUITE=str(suite))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (run,) = run_folders(tmp_path)
    (entry,) = json.loads((run / "run.json").read_text())["scenarios"]
    assert entry["node"] == f"{suite}::test_never_starts" and entry["verdict"] == "not_run"
    assert entry["exit_code"] == 2 and entry["exit_line"] == "no usable account for this scenario"
    report = (run / "report.md").read_text().replace("\\_", "_")
    assert "`never_starts` not run: exit 2: no usable account for this scenario" in report
    lines = proc.stdout.splitlines()
    assert f"[2/2] {suite}::test_never_starts: not run: exit 2: {entry['exit_line']}" in lines
    assert any(line.startswith("never_starts") and "not_run" in line for line in lines)
    assert "1 of 2 (1 not run) scenarios passed" in lines  # the renderer's summary line
    assert "1 of 2 (1 not run) scenarios passed." in report
    assert (run / "logs" / "scenario-2.log").is_file()


def _start(
    tmp_path: Path, suite: Path, url: str, *wrap: str, name: str = "", preset: str = "pytest"
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *wrap,
            *(["bash"] if not wrap or wrap[0] != "bash" else []),
            str(RUNNER),
            preset,
            "--host",
            url,
        ],
        cwd=tmp_path,
        env=_env(
            tmp_path, LOADTEST_SUITE=str(suite), LOADTEST_RESULTS_ROOT=str(tmp_path / "results")
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )


def _wait_started(tmp_path: Path, proc: subprocess.Popen, count: int = 1) -> None:
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "results").glob("*/started"))) < count:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _consistent(run: Path, reported: bool = True) -> str:
    """run.json and report.md of an interrupted run: both whole and saying the same."""
    info = json.loads((run / "run.json").read_text())
    assert info["exit_code"] == 130 and info["interrupted"] == 1
    report = (run / "report.md").read_text().replace("\\_", "_")
    assert ("The run was interrupted after" in report) is reported
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*"))
    return report


def test_second_ctrl_c_still_writes_run_json_and_report(tmp_path: Path) -> None:
    """A second SIGINT while the scenario is still writing its report: the load stops at once, and
    run.json and report.md are still written and agree (exit 130; the scenario "not run")."""
    slow_finish = SLEEPY_SUITE.replace("    finally:\n", "    finally:\n        time.sleep(20)\n")
    suite = fake_suite(tmp_path, slow_finish)
    with serve() as (url, _):
        proc = _start(tmp_path, suite, url)
        _wait_started(tmp_path, proc)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.5)
        os.killpg(proc.pid, signal.SIGINT)
        started = time.monotonic()
        out, err = _finish(proc)
    assert proc.returncode == 130 and time.monotonic() - started < 15, out + err
    assert "Fatal Python error" not in out + err and "Traceback" not in err
    assert "second interrupt" in out + err  # pytest preset: the trap prints into the tee
    (run,) = run_folders(tmp_path)
    report = _consistent(run, reported=False)
    (entry,) = json.loads((run / "run.json").read_text())["scenarios"]
    assert (
        entry["node"].endswith("::test_sleepy")
        and f"`sleepy` not run: exit {entry['exit_code']}" in report
    )
    assert "0 of 1 (1 not run) scenarios passed" in out


def test_ctrl_c_during_all_says_so_on_the_terminal(tmp_path: Path) -> None:
    """`all` sends each scenario's output to its log; the interrupt's line goes to the terminal
    (the runner's stderr), not into that log."""
    suite = fake_suite(tmp_path, SLEEPY_SUITE)
    with serve() as (url, _):
        proc = _start(tmp_path, suite, url, preset="all")
        _wait_started(tmp_path, proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = _finish(proc)
    assert proc.returncode == 130, out + err
    assert "interrupted: stopping the load, waiting for its report" in err, out + err
    (run,) = run_folders(tmp_path)
    assert "stopping the load" not in (run / "logs" / "scenario-1.log").read_text()
    _consistent(run)


def test_ctrl_c_reaches_a_runner_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A runner started with SIGINT ignored (`./run_load_tests.sh pytest &` from a script): a
    SIGINT to its process group still stops the load, the scenario writes its report, exit 130."""
    suite = fake_suite(tmp_path, SLEEPY_SUITE)
    ignoring = ("bash", "-c", 'trap "" INT; exec bash "$0" "$@"')  # SIGINT ignored, then the runner
    with serve() as (url, _):
        proc = _start(tmp_path, suite, url, *ignoring)
        _wait_started(tmp_path, proc)
        os.killpg(proc.pid, signal.SIGINT)
        started = time.monotonic()
        out, err = _finish(proc)
    assert proc.returncode == 130 and time.monotonic() - started < 30, out + err
    (run,) = run_folders(tmp_path)
    assert json.loads((run / "sleepy.json").read_text())["interrupted"] is True
    _consistent(run)


def test_ctrl_c_under_timeout_leaves_the_report(tmp_path: Path) -> None:
    """`timeout 120 ./run_load_tests.sh`: a Ctrl-C reaches the runner twice (the terminal's and
    timeout's copy); it counts once, so the scenario writes its report and report.md is rendered."""
    suite = fake_suite(tmp_path, SLEEPY_SUITE)
    with serve() as (url, _):
        proc = _start(tmp_path, suite, url, "timeout", "120")
        _wait_started(tmp_path, proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = _finish(proc)
    assert proc.returncode == 130, out + err
    assert "second interrupt" not in err
    (run,) = run_folders(tmp_path)
    assert json.loads((run / "sleepy.json").read_text())["interrupted"] is True
    _consistent(run)


def test_two_runs_against_one_target_both_say_so(tmp_path: Path) -> None:
    """Two runs at once against one target: both finish (not refused), both run.json files name
    the other run, and both terminals carry the warning."""
    # Each run's load lasts until both runs are loading (bounded), however slow the start-ups.
    both_loading = (
        "deadline = time.monotonic() + 60\n"
        "        while len(list(run.parent.glob('*/started'))) < 2:\n"
        "            assert time.monotonic() < deadline\n"
        "            time.sleep(0.1)\n"
        "        time.sleep(1)"
    )
    suite = fake_suite(tmp_path, SLEEPY_SUITE.replace("time.sleep(60)", both_loading))
    with serve() as (url, _):
        first = _start(tmp_path, suite, url)
        _wait_started(tmp_path, first)
        second = _start(tmp_path, suite, url)
        _wait_started(tmp_path, second, count=2)
        outs = [_finish(first), _finish(second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    runs = run_folders(tmp_path)
    assert len(runs) == 2
    for run, other in (runs, runs[::-1]):
        info = json.loads((run / "run.json").read_text())
        assert info["concurrent_runs"] == [str(other)], info
        assert "include the other's load" in info["concurrent_note"]
        report = (run / "report.md").read_text().replace("\\_", "_")
        assert "| concurrent runs |" in report and str(other) in report
    for _out, err in outs:
        assert "another run against the same target" in err


def test_compare_prints_the_comparison_and_the_verdicts(tmp_path: Path) -> None:
    """--compare RUN: the terminal shows report.md's comparison section and the renderer's verdict
    lines (the same rows as report.md's Verdicts), no longer sent to /dev/null."""
    suite = fake_suite(tmp_path, NEVER_STARTS_SUITE)
    with serve() as (url, _):
        first, _ = run_runner(tmp_path, "all", "--host", url, LOADTEST_SUITE=str(suite))
        (earlier,) = run_folders(tmp_path)
        proc, _ = run_runner(
            tmp_path, "all", "--host", url, "--compare", str(earlier), LOADTEST_SUITE=str(suite)
        )
    assert first.returncode == 2 and proc.returncode == 2, proc.stdout + proc.stderr
    later = next(r for r in run_folders(tmp_path) if r != earlier)
    report = (later / "report.md").read_text()
    heading = next(line for line in report.splitlines() if line.startswith("## Comparison with"))
    assert heading in proc.stdout.splitlines()
    assert any(re.match(r"first\s+passed$", line) for line in proc.stdout.splitlines())
    assert proc.stdout.count("report: ") == 1


def test_report_shows_limit_shaped_and_defects_by_id(tmp_path: Path) -> None:
    """A report with limit_shaped and a defect record: report.md's verdicts name the defect by id
    and carry the limit_shaped_reason line under the scenario."""
    body = {
        "schema": "therapybridge-loadtest/1", "test_name": "login_burst", "total_requests": 3,
        "passed": False, "problems": ["past the login limit the service answered 500"],
        "defects": [{"id": "limiter-500", "route": "POST /api/v1/login",
                     "message": "past the login limit the service answered 500 instead of 429"}],
        "limit_shaped": True,
        "limit_shaped_reason": "the deployment keys its login limit by address",
    }  # fmt: skip
    (tmp_path / "login_burst.json").write_text(json.dumps(body))
    render.render(tmp_path)
    report = (tmp_path / "report.md").read_text().replace("\\_", "_")
    line = next(x for x in report.splitlines() if x.startswith("- `login_burst` FAILED"))
    assert "limiter-500" in line
    assert "  - limit shaped: the deployment keys its login limit by address" in report
