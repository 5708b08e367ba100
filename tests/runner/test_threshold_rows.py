"""Threshold rows say what they measured, so each actual matches a figure the report prints; the
Machine table lists the load generator's packages, not the reference backend's as the target's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadkit.measure.recording import RunRecorder
from loadkit.report import render
from loadkit.verdicts import locust_verdict, slo
from tests.runner import markdown as md
from tests.runner.reports import real_scenario
from tests.runner.tiny_server import serve


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """One real scenario with the read thresholds, rendered."""
    run_dir = tmp_path_factory.mktemp("thresholds")
    with serve() as (url, _):
        report = real_scenario(run_dir, url, "reads", duration_s=1.2)
    return report, render.render(run_dir)[0].read_text(encoding="utf-8")


def test_summary_threshold_rows_match_the_summary_table(rendered) -> None:
    """A read threshold row names the summary it used, and its actual is the Summary's figure."""
    report, text = rendered
    block = md.section(text, "Scenarios")
    summary_row = md.row(md.section(text, "Summary"), "reads")
    columns = {
        key: cell for (_, key), cell in zip(render.SUMMARY_FIELDS, summary_row[3:], strict=True)
    }
    checked = 0
    for row in report["thresholds"]:
        if row["metric"] not in columns:
            continue
        cells = md.row(block, row["metric"])
        assert cells[1] == f"the summary of all {report['total_requests']} requests", cells
        assert cells[3] == columns[row["metric"]], (row["metric"], cells, columns)
        checked += 1
    assert checked >= 2  # p95 and error rate at least


def test_locust_read_p95_names_its_endpoint_and_leaves_probes_out() -> None:
    """The Locust read p95 is the slowest load read, named; a slow probe login is not a read."""
    recorder = RunRecorder()
    recorder.start(1000.0)
    for i in range(50):
        recorder.record("GET /api/sessions/", 0.010, status=200, at=1000 + i * 0.01)
        recorder.record("GET /api/sessions/{id}", 0.020, status=200, at=1000 + i * 0.01)
    for i in range(5):
        recorder.record("probe POST /api/v1/login", 0.9, status=401, at=1000 + i)
    rows, _ = locust_verdict.thresholds(slo.load_profile("default"), recorder, 10.0)
    p95 = next(r for r in rows if r["metric"] == "response_time_p95_ms")
    assert p95["actual"] == pytest.approx(20.0, abs=0.1)
    assert p95["endpoint"] == "GET /api/sessions/{id}"
    assert "GET /api/sessions/{id}" in p95["measured"] and "probe" in p95["measured"]
    assert all(r["measured"] for r in rows)


def test_machine_table_keeps_the_backend_packages_apart(rendered, tmp_path: Path) -> None:
    """fastapi/uvicorn/sqlalchemy are not rows of the Machine table; they are named as the
    target's only when run.json says the runner's reference backend was the target."""
    _, text = rendered
    machine = md.section(text, "Machine")
    for name in ("fastapi", "uvicorn", "sqlalchemy"):
        with pytest.raises(AssertionError):
            md.row(machine, f"{name} version")
    assert md.row(machine, "locust version")
    assert "they are the target's only if the target was that backend" in machine
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with serve() as (url, _):
        real_scenario(run_dir, url, "reads", duration_s=0.3)
    (run_dir / "run.json").write_text(
        json.dumps({"server": "reference backend started by the runner, pid 1"})
    )
    machine = md.section(render.render(run_dir)[0].read_text(), "Machine")
    assert "The target was the bundled reference backend: fastapi " in machine


def test_summary_gives_the_service_error_rate_beside_every_failure() -> None:
    """A Locust report whose failures are mostly the prober's findings shows both rates in the
    Summary, and a report without a split shows its own rate in both columns."""
    split = {"failures": 765, "prober_findings": 760, "service_errors": 5,
             "service_error_rate_percent": 0.5}  # fmt: skip
    locust = {"test_name": "locust", "tool": "locust", "passed": False, "total_requests": 1000,
              "error_rate_percent": 76.48, "error_sources": split}  # fmt: skip
    pytest_run = {"test_name": "reads", "tool": "pytest", "passed": True, "error_rate_percent": 1.0}
    lines = render.summary_section([locust, pytest_run])
    headers = [c.strip() for c in lines[2].strip("|").split("|")]
    at = headers.index("service errors %")
    assert headers[at - 1] == "errors %"
    rows = {
        r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")] for r in lines[4:6]
    }
    assert rows["locust"][at - 1 : at + 1] == ["76.48", "0.50"]
    assert rows["reads"][at - 1 : at + 1] == ["1.00", "1.00"]
    assert any("leaves those out" in line for line in lines)
    plain = render.summary_section([pytest_run])
    assert "service errors %" not in plain[2]
