"""run_load_tests.sh `all`: its counts are run.json's verdicts, and waiting lines show live.

Real runner processes against the tiny loopback server with a fake pytest suite (LOADTEST_SUITE):
a scenario whose pytest exit code and report disagree, and a scenario that says it waits for the
login budget and goes on only once the terminal has shown that line. Every wait is bounded.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from tests.runner.test_runner import RUNNER, _env, fake_suite, run_folders, run_runner
from tests.runner.tiny_server import serve

DISAGREEING_SUITE = """
import json, os
from pathlib import Path
import pytest

def _report(name, **fields):
    run = Path(os.environ["LOADTEST_RUN_DIR"])
    body = {"schema": "therapybridge-loadtest/1", "test_name": name, "total_requests": 0, **fields}
    (run / f"{name}.json").write_text(json.dumps(body))

def test_first():
    _report("first", passed=True)

def test_defect_only():
    # pytest passes it; its report names a defect, so the report's verdict is failed
    _report("defect_only", passed=True,
            defects=[{"id": "limiter-500", "route": "POST /api/v1/login", "message": "a 500"}])

def test_fails():
    _report("fails", passed=False)
    assert False, "fails on purpose"

def test_skipped():
    _report("skipped", passed=True, skipped_assertions="no server on this machine")
    pytest.skip("no server on this machine")

def test_fails_after_report():
    _report("fails_after_report", passed=True)
    assert False, "a failure the report did not see"
"""

WAITING = (
    "the login budget is reached (POST /api/v1/login answered 500): "
    "logging in 9 accounts at 5/minute: about 3 min"
)
WAITING_SUITE = f"""
import json, os, time
from pathlib import Path

def test_waits(capsys):
    run = Path(os.environ["LOADTEST_RUN_DIR"])
    with capsys.disabled():  # past the capture, as the suite's own progress lines are written
        print("loadtest: {WAITING}", flush=True)
        print("loadtest: limit_shaped: not a waiting line", flush=True)
    deadline = time.monotonic() + 20
    while not (run / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = (run / "go").exists()
    body = {{"schema": "therapybridge-loadtest/1", "test_name": "waits", "total_requests": 0,
            "passed": seen}}
    (run / "waits.json").write_text(json.dumps(body))
    assert seen, "the waiting line never reached the terminal"
"""


def test_all_counts_are_the_reports_verdicts(tmp_path: Path) -> None:
    """`all`: a scenario pytest passed but whose report failed (a defect) is counted and listed as
    failed; one pytest failed after a passing report is counted passed, its line says pytest's exit;
    the runner's counts equal run.json's verdicts and the renderer's summary; exit 1."""
    suite = fake_suite(tmp_path, DISAGREEING_SUITE)
    with serve() as (url, _):
        proc, _ = run_runner(tmp_path, "all", "--host", url, LOADTEST_SUITE=str(suite))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run,) = run_folders(tmp_path)
    verdicts = json.loads((run / "run.json").read_text())["verdicts"]
    counts = Counter(verdicts.values())
    assert counts == {"passed": 2, "failed": 2, "skipped": 1}, verdicts
    lines = proc.stdout.splitlines()
    assert "2 of 5 scenarios failed (2 passed, 1 skipped):" in lines, proc.stdout
    listed = lines[lines.index("2 of 5 scenarios failed (2 passed, 1 skipped):") + 1 :][:3]
    assert listed[:2] == [f"  {suite}::test_defect_only", f"  {suite}::test_fails"], listed
    assert not listed[2].startswith("  "), listed
    assert "2 of 5 (2 failed, 1 skipped) scenarios passed" in lines  # the renderer's, same counts
    assert f"[2/5] {suite}::test_defect_only: failed: defect limiter-500" in proc.stdout
    after = next(line for line in lines if line.startswith("[5/5]"))
    assert after.startswith(f"[5/5] {suite}::test_fails_after_report: passed (pytest exited 1;")
    assert f"run folder: {run}" in proc.stdout


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put((time.monotonic(), line.rstrip("\n")))
    into.put((time.monotonic(), None))


def test_all_shows_a_waiting_line_while_the_scenario_runs(tmp_path: Path) -> None:
    """`all`: a scenario's "the login budget is reached ... about 3 min" line reaches the
    terminal while the scenario runs (the scenario goes on only once it was seen), prefixed with
    the scenario; its other loadtest: lines stay in logs/scenario-N.log."""
    suite = fake_suite(tmp_path, WAITING_SUITE)
    with serve() as (url, _):
        proc = subprocess.Popen(
            ["bash", str(RUNNER), "all", "--host", url],
            cwd=tmp_path,
            env=_env(tmp_path, LOADTEST_SUITE=str(suite)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        out: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
        seen = _release_on_waiting_line(tmp_path, out)
        proc.wait(timeout=60)
    assert proc.returncode == 0, seen
    waiting = f"[1/1] {suite}::test_waits: waiting: {WAITING}"
    assert waiting in seen and seen.index(waiting) < seen.index(
        f"[1/1] {suite}::test_waits: passed"
    )
    assert not any("limit_shaped" in line for line in seen), seen
    (run,) = run_folders(tmp_path)
    assert "limit_shaped: not a waiting line" in (run / "logs" / "scenario-1.log").read_text()


def _release_on_waiting_line(tmp_path: Path, out: queue.Queue) -> list[str]:
    """Read the runner's lines (at most 60 s); on the waiting line, let the scenario go on."""
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _, line = out.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if re.search(r"waiting: the login budget", line):
            for run in run_folders(tmp_path):
                (run / "go").write_text("yes")
    return seen
