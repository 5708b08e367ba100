"""Every ending leaves a consistent run folder: SIGTERM, SIGHUP (terminal closed), a dead target.

pytest and Locust run directly: SIGTERM and SIGHUP end the run as Ctrl-C does; the scenario report
is whole, interrupted, and says which signal (``ended``), and report.md rendered from the folder
says the same. The runner: SIGTERM and SIGHUP reach its child once, and run.json (``ended``,
``verdicts``) and report.md agree; a SIGHUP comes with its terminal gone (a pseudo-terminal whose
master side is closed), as when a terminal window is closed. A reference backend the runner started
that dies mid-run is named in run.json and report.md. Two runs at once against one target (pytest
and Locust, run directly) both name the other in their JSON and report.md. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from loadkit.report import render
from tests.faults.conftest import (
    REPO,
    Background,
    Done,
    connections_of,
    locust_command,
    reports_under,
    runner_command,
    suite_command,
    talks_to,
    tool_env,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ENDED_WORDS = {"SIGTERM": "terminated (SIGTERM)", "SIGHUP": "hung up (SIGHUP: its terminal closed)"}


def _pytest_sustained(url: str) -> list[str]:
    return suite_command("pytest_load_test.py", "-k", "sustained_load", "--host", url,
                         "--profile", "faults")  # fmt: skip


def _locust_db_pool(url: str, run_time: str = "30s") -> list[str]:
    return locust_command("--host", url, "-u", "3", "-r", "3", "-t", run_time, "--tags", "db_pool",
                          "--profile", "faults")  # fmt: skip


def _signal_mid_load(backend, run: Background, signum: int, *, group: bool = False) -> None:
    wait_until(lambda: talks_to(run.proc.pid, backend.port), 60, "the first connection")
    time.sleep(3.0)  # past the logins: the load is running (tests/faults/test_interrupt.py's wait)
    assert run.proc.poll() is None, "the run ended before the signal"
    if group:
        os.killpg(run.proc.pid, signum)
    else:
        run.proc.send_signal(signum)


def _run_dirs(root: Path) -> list[Path]:
    """The run folders under a results root (not its .run-locks)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _rendered(run_dir: Path) -> str:
    render.render(run_dir)
    return (run_dir / "report.md").read_text(encoding="utf-8").replace("\\_", "_")


def _check_direct(done, name: str, signame: str) -> None:
    """The report is whole, interrupted, ``ended`` the signal; report.md says the same."""
    assert done.returncode != 0, done.output[-3000:]
    assert "Traceback" not in done.output, done.output[-3000:]
    report = done.reports[name]
    assert report["interrupted"] is True and report["ended"] == signame, report["ended"]
    assert report["verdict"] == "failed" and report["total_requests"] > 0
    (run_dir,) = _run_dirs(done.results)
    text = _rendered(run_dir)
    assert f"| ended | {ENDED_WORDS[signame]} |" in text
    assert f"`{report['test_name']}` FAILED: interrupted after" in text


def test_pytest_run_ends_on_sigterm_like_ctrl_c(reference, background) -> None:
    """pytest run directly, SIGTERM during the sustained scenario: its report is written,
    interrupted, ``ended`` SIGTERM, long before the scenario's own 10 s. (SIGHUP takes the same
    handler: the runner's SIGHUP test below sends it to pytest.)"""
    backend = reference()
    run = background(_pytest_sustained(backend.url))
    _signal_mid_load(backend, run, signal.SIGTERM)
    done = run.wait(60)
    _check_direct(done, "sustained_load.json", "SIGTERM")
    assert done.reports["sustained_load.json"]["duration_seconds"] < 9


def test_locust_run_ends_on_sighup(reference, background) -> None:
    """Headless Locust, SIGHUP mid-run (its terminal closed): the report is written (interrupted,
    ``ended`` SIGHUP), not lost with the process, well before -t 30s. (Locust's SIGTERM: the
    runner's SIGTERM test below.)"""
    backend = reference()
    run = background(_locust_db_pool(backend.url))
    _signal_mid_load(backend, run, signal.SIGHUP)
    done = run.wait(60)
    _check_direct(done, "locust_db_pool.json", "SIGHUP")
    assert done.seconds < 30


def _runner_info(done) -> tuple[dict, str]:
    (run_dir,) = _run_dirs(done.results)
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return info, (run_dir / "report.md").read_text(encoding="utf-8").replace("\\_", "_")


def _check_runner(done, signame: str, report_name: str) -> None:
    """Exit 130; run.json's ``ended`` and verdicts are report.md's; the scenario report agrees."""
    assert done.returncode == 130, done.output[-3000:]
    info, text = _runner_info(done)
    report = done.reports[report_name]
    assert info["ended"] == signame and info["interrupted"] == 1 and info["exit_code"] == 130
    assert report["ended"] == signame and report["interrupted"] is True
    assert info["verdicts"] == {report["test_name"]: "failed"}, info["verdicts"]
    assert f"| ended | {ENDED_WORDS[signame]} |" in text
    assert f"`{report['test_name']}` FAILED: interrupted after" in text


def test_runner_sigterm_ends_the_locust_preset_consistently(reference, background) -> None:
    """`kill PID` (SIGTERM, as timeout or a supervisor sends) to run_load_tests.sh during a quick
    preset: Locust gets it once, writes its report, the runner renders and exits 130."""
    backend = reference()
    run = background(
        runner_command("quick", "--host", backend.url, "--run-time", "60s", "--users", "3",
                       "--spawn-rate", "3", "--tags", "db_pool", "--profile", "faults")
    )  # fmt: skip
    _signal_mid_load(backend, run, signal.SIGTERM)
    done = run.wait(90)
    _check_runner(done, "SIGTERM", "locust_db_pool.json")
    assert "terminated (SIGTERM): stopping the load" in done.output


def test_runner_sighup_with_the_terminal_gone(reference, tmp_path: Path) -> None:
    """The pytest preset on a (pseudo-)terminal that closes: its master side closed (output now
    goes nowhere) and SIGHUP to the runner's process group. The scenario's report, run.json and
    report.md are still written and agree; the runner's later lines went to logs/runner.log."""
    backend = reference()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        runner_command("pytest", "--host", backend.url, "--profile", "faults"),
        cwd=REPO,
        env=tool_env(tmp_path, LOADTEST_SUITE="pytest_load_test.py",
                     PYTEST_ADDOPTS="-k sustained_load"),
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    started = time.monotonic()
    try:
        wait_until(lambda: _drain(master) or talks_to(proc.pid, backend.port), 60, "the load")
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            _drain(master)
        os.close(master)  # the terminal is gone
        os.killpg(proc.pid, signal.SIGHUP)
        proc.wait(90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    root = tmp_path / "results"
    done = Done(proc.returncode, "", time.monotonic() - started, root, reports_under(root))
    _check_runner(done, "SIGHUP", "sustained_load.json")
    (run_dir,) = _run_dirs(root)
    assert "report: " in (run_dir / "logs" / "runner.log").read_text(encoding="utf-8")


def _drain(fd: int) -> bool:
    """Read what the terminal has to show (so the writer never blocks); always False."""
    while select.select([fd], [], [], 0.05)[0]:
        try:
            if not os.read(fd, 65536):
                break
        except OSError:
            break
    return False


def test_runner_names_a_backend_that_died_mid_run(tmp_path: Path) -> None:
    """The runner's own reference backend SIGKILLed during a quick preset: the run goes to its end,
    run.json says ``target_died`` (ended completed) and report.md shows the same line."""
    run = Background(
        runner_command("quick", "--run-time", "8s", "--users", "3", "--spawn-rate", "3", "--tags",
                       "db_pool", "--profile", "faults"),
        tmp_path,
    )  # fmt: skip
    try:
        wait_until(lambda: list((tmp_path / "results").glob("*/run.json")), 60, "run.json")
        pid = _backend_pid(tmp_path)
        wait_until(lambda: _connected(run.proc.pid), 90, "the load")
        time.sleep(3.0)
        os.kill(pid, signal.SIGKILL)
        done = run.wait(90)
    finally:
        run.kill()
    assert done.returncode == 1, done.output[-3000:]
    info, text = _runner_info(done)
    assert (
        info["ended"] == "completed" and f"(pid {pid}) exited during the run" in info["target_died"]
    )
    assert f"| target died | **{info['target_died']}** |" in text
    assert info["verdicts"] == {"locust_db_pool": "failed"}


def _connected(pid: int) -> bool:
    """Whether the process tree has a connection open to a loopback port (the load started)."""
    return any(c.raddr and c.raddr.ip == "127.0.0.1" for c in connections_of(pid))


def _backend_pid(tmp_path: Path) -> int:
    def found() -> bool:
        (info,) = tmp_path.glob("results/*/run.json")
        return "pid" in json.loads(info.read_text()).get("server", "")

    wait_until(found, 60, "the runner's backend")
    (info,) = tmp_path.glob("results/*/run.json")
    return int(json.loads(info.read_text())["server"].rsplit("pid ", 1)[1])


def test_two_direct_runs_against_one_target_both_say_so(reference, background) -> None:
    """pytest and Locust run directly, at once, against one backend: each JSON report names the
    other's run folder in ``concurrent_runs`` and report.md rendered from each folder says so."""
    backend = reference()
    locust = background(_locust_db_pool(backend.url, "10s"))
    wait_until(lambda: talks_to(locust.proc.pid, backend.port), 60, "Locust's first connection")
    suite = background(suite_command("pytest_load_test.py", "-k", "concurrent_sessions", "--host",
                                     backend.url, "--profile", "faults"))  # fmt: skip
    done_suite, done_locust = suite.wait(90), locust.wait(90)
    assert "Traceback" not in done_suite.output + done_locust.output
    folders = _run_dirs(done_locust.results)
    by_tool = {p.name.rsplit("_", 1)[-1]: p for p in folders}
    assert set(by_tool) == {"locust", "pytest"}, folders
    for tool, name, other in (("locust", "locust_db_pool.json", "pytest"),
                              ("pytest", "concurrent_sessions.json", "locust")):  # fmt: skip
        report = json.loads((by_tool[tool] / name).read_text(encoding="utf-8"))
        assert report["concurrent_runs"] == [str(by_tool[other])], report["concurrent_runs"]
        text = _rendered(by_tool[tool])
        assert "| concurrent runs |" in text and str(by_tool[other]) in text
        assert "include the other's load" in text
