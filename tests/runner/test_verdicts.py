"""Verdicts with reasons: every scenario of a run is listed with passed, failed, skipped or
not run, and each one that did not pass says why, in the JSON, in report.md and on the terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadkit.report import render, writer
from loadkit.suite.outcome import Outcome, reporting
from tests.runner import markdown as md

ROOT = Path(__file__).resolve().parents[2]
DEFECT = {
    "id": "non-audio-accepted",
    "route": "POST /api/sessions/upload",
    "message": "a text file was accepted as audio (201)",
    "evidence": {"status": 201},
}


def _outcome(name: str, *, latency_ms: float = 5.0, requests: int = 40) -> Outcome:
    """An outcome whose recorder holds ``requests`` answered requests of ``latency_ms``."""
    outcome = Outcome(name, "http://127.0.0.1:9", "default", parameters={"requests": requests})
    t0 = outcome.started_at
    for i in range(requests):
        outcome.recorder.record(
            "GET /api/sessions/", latency_ms / 1000, status=200, at=t0 + i * 0.01
        )
    outcome.duration_s = 0.5
    return outcome


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict], str]:
    """A run folder: a passed, a failed (problem, defect), a skipped and a not-run scenario."""
    run_dir = tmp_path_factory.mktemp("verdicts")
    written = {}
    passed = _outcome("reads_fine")
    passed.thresholds = [
        {"metric": "response_time_p95_ms", "limit": 500, "actual": 5.0, "passed": True}
    ]
    failed = _outcome("trust_probe")
    failed.problems = ["upload trust defect: 2 of 4 bad uploads accepted", DEFECT["message"]]
    failed.defects = [DEFECT]
    skipped = _outcome("memory_leak_detection")
    skipped.skip_reason = "memory growth not asserted: remote target"
    for outcome in (passed, failed, skipped):
        with reporting(outcome, run_dir):
            pass
        written[outcome.test_name] = writer.read_report(run_dir / f"{outcome.test_name}.json")
    info = {
        "preset": "all",
        "scenarios": [
            {"node": "pytest_load_test.py::test_trust_probe", "verdict": "failed", "exit_code": 1},
            {
                "node": "pytest_load_test.py::test_rate_limit_enforcement[upload_limit]",
                "verdict": "not_run",
                "exit_code": 2,
                "exit_line": "no usable account: loadtest-013@example.com answered 401",
            },
        ],
    }
    (run_dir / "run.json").write_text(json.dumps(info))
    path, _ = render.render(run_dir)
    return run_dir, written, path.read_text(encoding="utf-8")


def test_reports_carry_verdict_and_reason(run) -> None:
    """Each JSON report has verdict and reason; failed names its problem and defect by id."""
    _, written, _ = run
    assert written["reads_fine"]["verdict"] == "passed"
    assert written["trust_probe"]["verdict"] == "failed"
    reason = written["trust_probe"]["reason"]
    assert "defect non-audio-accepted on POST /api/sessions/upload" in reason
    assert "2 of 4 bad uploads accepted" in reason
    assert reason.count(DEFECT["message"]) == 1  # the problem that repeats the defect is told once
    assert written["memory_leak_detection"]["verdict"] == "skipped"
    assert written["memory_leak_detection"]["reason"] == "memory growth not asserted: remote target"


def test_report_md_lists_every_scenario_with_its_reason(run) -> None:
    """The Verdicts section lists all four; the failed, skipped and not-run ones say why."""
    _, written, text = run
    verdicts = md.section(text, "Verdicts")
    assert "- `reads_fine` passed" in verdicts
    assert f"- `trust_probe` FAILED: {written['trust_probe']['reason']}" in verdicts
    assert (
        "- `memory_leak_detection` skipped: memory growth not asserted: remote target" in verdicts
    )
    line = "- `rate_limit_enforcement[upload_limit]` not run: exit 2: no usable account"
    assert line in verdicts


def test_skipped_and_not_run_are_not_counted_as_passed(run) -> None:
    """ "N of M meeting targets" counts only passed scenarios, M counting the not-run one too."""
    _, _, text = run
    row = md.row(md.section(text, "Run"), "scenarios meeting their targets")
    assert row[1] == "1 of 4 (1 failed, 1 skipped, 1 not run)"
    assert md.row(md.section(text, "Summary"), "memory_leak_detection")[2] == "skipped"


def test_interrupted_scenario_fails_with_the_reason(tmp_path: Path) -> None:
    """An interrupted run's verdict is failed, the reason saying it was interrupted."""
    outcome = _outcome("cut_short")
    outcome.interrupted = True
    built = outcome.build()
    assert built["verdict"] == "failed" and built["reason"].startswith("interrupted after")


def test_cli_prints_each_verdict_and_reason(run) -> None:
    """`python -m loadkit.render` prints one line per scenario, with the reason unless passed."""
    run_dir, written, _ = run
    proc = subprocess.run(
        [sys.executable, "-m", "loadkit.render", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["reads_fine", "passed"] for line in lines)
    failed = next(line for line in lines if line.startswith("trust_probe "))
    assert "failed" in failed and written["trust_probe"]["reason"] in failed
    assert any("not_run" in line and "exit 2: no usable account" in line for line in lines)
    assert "1 of 4 (1 failed, 1 skipped, 1 not run) scenarios passed" in lines
