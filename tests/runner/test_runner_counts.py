"""run_load_tests.sh `all`: the counts it prints are run.json's verdicts.

Real runner processes against the tiny loopback server with a fake pytest suite (LOADTEST_SUITE):
scenarios whose pytest exit code and report disagree. Every wait is bounded.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.runner.test_runner import fake_suite, run_folders, run_runner
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
