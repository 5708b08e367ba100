"""run_load_tests.sh readiness: every scenario, then the capacity search, in one run folder, and
one readiness.md naming the verdict; a fake suite against the tiny server keeps it to seconds."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runner import markdown as md
from tests.runner.test_runner import FAKE_SUITE, fake_suite, run_folders, run_runner
from tests.runner.tiny_server import serve


def test_help_names_the_readiness_preset(tmp_path: Path) -> None:
    """--help lists readiness and what it runs."""
    proc, _ = run_runner(tmp_path, "--help")
    assert proc.returncode == 0 and "  readiness  `all` then the capacity search" in proc.stdout


def test_readiness_runs_the_suite_and_renders_one_report(tmp_path: Path) -> None:
    """The scenarios run past a failure into one folder, then the capacity search (which the
    tiny server refuses: no login); readiness.md says not ready, naming the failed scenario and
    why capacity is unknown; the exit code is 1 and the last line names readiness.md."""
    suite = fake_suite(tmp_path, FAKE_SUITE)
    with serve() as (url, _):
        proc, _ = run_runner(
            tmp_path, "readiness", "--host", url, "--run-time", "10s", LOADTEST_SUITE=str(suite)
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run,) = run_folders(tmp_path)
    assert run.name.endswith("_readiness")
    assert json.loads((run / "run.json").read_text())["preset"] == "readiness"
    text = (run / "readiness.md").read_text()
    summary = md.section(text, "Executive summary")
    assert "**Verdict: NOT READY**" in summary and "`fake_second` failed" in summary
    assert "the capacity search did not run (exit 2: capacity: login failed" in summary
    assert (run / "logs" / "capacity.log").is_file()
    assert (run / "report.md").is_file()
    assert proc.stdout.strip().splitlines()[-1] == f"report: {run}/readiness.md (exit 1)"
