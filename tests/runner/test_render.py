"""loadkit.render: a run folder written by a real short load becomes Markdown and PNG charts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from loadkit.report import charts, render
from loadkit.verdicts import bottlenecks
from tests.runner import markdown as md
from tests.runner.reports import constant_scenario, real_scenario
from tests.runner.tiny_server import serve

ROOT = Path(__file__).resolve().parents[2]
SATURATED = {"size": 5, "max_overflow": 10, "checked_out": 15}
HEALTHY = {"size": 5, "max_overflow": 10, "checked_out": 2}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict], str]:
    """Two real scenarios (pool saturated with 429s; pool healthy), rendered once."""
    run_dir = tmp_path_factory.mktemp("run") / "20260101T000000Z_quick"
    run_dir.mkdir()
    with serve() as (url, script):
        script.pool = dict(SATURATED)
        saturated = real_scenario(run_dir, url, "pool_saturated", limited_every=5)
        script.pool = dict(HEALTHY)
        healthy = real_scenario(run_dir, url, "pool_healthy")
    info = {"preset": "quick", "database": "SQLite file under test", "target": url}
    (run_dir / "run.json").write_text(json.dumps(info))
    path, _ = render.render(run_dir)
    reports = {"pool_saturated": saturated, "pool_healthy": healthy}
    return run_dir, reports, path.read_text(encoding="utf-8")


def test_summary_rows_show_the_json_figures(rendered) -> None:
    """Every figure of the summary table is the report JSON's value, for each scenario."""
    _, reports, text = rendered
    summary = md.section(text, "Summary")
    for name, report in reports.items():
        cells = md.row(summary, name)
        for cell, (_, key) in zip(cells[3:], render.SUMMARY_FIELDS, strict=True):
            assert md.same_figure(cell, report[key]), (name, key, cell, report[key])


def test_endpoint_and_pool_figures_come_from_the_json(rendered) -> None:
    """Per-endpoint rows and the DB pool line print the JSON's numbers."""
    _, reports, text = rendered
    scenarios = md.section(text, "Scenarios")
    for name, report in reports.items():
        block = scenarios[scenarios.index(f"### {name}") :]
        for endpoint, stats in report["endpoints"].items():
            cells = md.row(block, endpoint)
            for cell, (_, key) in zip(cells[1:], render.ENDPOINT_FIELDS, strict=True):
                assert md.same_figure(cell, stats[key]), (name, endpoint, key)
        pool_line = next(line for line in block.splitlines() if line.startswith("DB pool"))
        pool = report["db_pool"]
        assert f"in use max {pool['checked_out_max']}," in pool_line
        assert f"open max {pool['open_max']}, capacity {pool['capacity']}," in pool_line
        assert pool["capacity"] == pool["size"] + pool["max_overflow"]
        assert pool["open_max"] == pool["checked_out_max"]  # the tiny server opens what is used
        assert "overflow_max" not in pool_line and "-" not in pool_line


def test_machine_target_and_database_are_stated(rendered) -> None:
    """The machine (cpus, platform, python, commit) and the target and database are stated."""
    _, reports, text = rendered
    env = reports["pool_healthy"]["environment"]
    machine = md.section(text, "Machine")
    for key in ("cpus", "platform", "python"):
        assert md.row(machine, key)[1] == str(env[key])
    assert md.row(machine, "commit")[1] == (env["commit"] or "n/a")
    run = md.section(text, "Run")
    assert md.row(run, "target")[1] == reports["pool_healthy"]["target"]
    assert md.row(run, "database")[1] == "SQLite file under test"


def test_charts_are_valid_pngs_linked_from_the_report(rendered) -> None:
    """Each scenario has its four charts as real PNG files, and the Markdown links each one."""
    run_dir, reports, text = rendered
    for name in reports:
        for chart in charts.CHARTS:
            path = run_dir / "charts" / f"{name}_{chart}.png"
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            with Image.open(path) as image:
                image.verify()
                assert image.size[0] > 100 and image.size[1] > 100
            assert f"](charts/{path.name})" in text


def test_pool_saturation_is_reported_exactly_when_the_pool_was_full(rendered) -> None:
    """The pool line appears for the saturated run, with its figures, not for the healthy one."""
    _, reports, text = rendered
    analysis = md.section(text, "Bottleneck analysis")
    full = reports["pool_saturated"]["db_pool"]
    capacity = full["size"] + full["max_overflow"]
    assert full["checked_out_max"] >= capacity  # the data warrants it...
    line = f"peaked at {full['checked_out_max']:g} of {capacity:g}"
    assert line in md.bold_block(analysis, "pool_saturated")
    healthy = reports["pool_healthy"]["db_pool"]
    assert healthy["checked_out_max"] < capacity and healthy["exhaustion_events"] == 0
    assert "pool saturated" not in md.bold_block(analysis, "pool_healthy")


def test_rate_limit_share_is_the_share_of_429s(rendered) -> None:
    """The rate-limit line quotes 429s / total from the JSON; absent where there were no 429s."""
    _, reports, text = rendered
    analysis = md.section(text, "Bottleneck analysis")
    limited = reports["pool_saturated"]
    share = limited["status_codes"]["429"] / limited["total_requests"] * 100
    expected = (
        f"{limited['status_codes']['429']} of {limited['total_requests']} requests answered 429"
    )
    assert f"{expected} ({share:.1f}%)" in md.bold_block(analysis, "pool_saturated")
    assert "429" not in md.bold_block(analysis, "pool_healthy")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(limited["errors_by_kind"].items()) if v)
    assert f"Errors by kind: {errors}." in md.bold_block(analysis, "pool_saturated")


def test_dominant_endpoint_line_follows_the_measured_shares(rendered) -> None:
    """The slow-endpoint line appears exactly when the measured time shares meet the rule."""
    _, reports, text = rendered
    analysis = md.section(text, "Bottleneck analysis")
    for name, report in reports.items():
        stats = report["endpoints"]
        times = {k: v["requests"] * v["response_time_avg_ms"] for k, v in stats.items()}
        share = times["POST /api/v1/login"] / sum(times.values())
        request_share = stats["POST /api/v1/login"]["requests"] / sum(
            v["requests"] for v in stats.values()
        )
        warranted = share >= bottlenecks.DOMINANT_TIME_SHARE and share >= 2 * request_share
        line = f"`POST /api/v1/login` took {share * 100:.1f}% of all response time"
        assert (line in md.bold_block(analysis, name)) is warranted, (name, share)


def test_remote_target_marks_resources_unavailable(tmp_path: Path) -> None:
    """Without server figures the report says so and draws no server chart; no pool line either."""
    constant_scenario(tmp_path, "remote", latency_ms=20.0)
    path, _ = render.render(tmp_path)
    text = path.read_text()
    assert "Server memory and CPU figures are unavailable" in md.bold_block(text, "remote")
    assert "Server resources: unavailable (" in text
    assert not (tmp_path / "charts" / "remote_server.png").exists()
    assert (tmp_path / "charts" / "remote_latency.png").exists()
    assert "pool saturated" not in text


def test_exhaustion_events_alone_flag_the_pool(tmp_path: Path) -> None:
    """Pool time-outs (exhaustion events) flag saturation even with the peak below capacity."""
    pool = {"size": 5, "max_overflow": 10, "checked_out_max": 7, "exhaustion_events": 3}
    constant_scenario(tmp_path, "timeouts", latency_ms=20.0, db_pool=pool | {"samples": 40})
    text = render.render(tmp_path)[0].read_text()
    assert "peaked at 7 of 15 (size + max_overflow), with 3 exhaustion events, in 40" in text


def test_generator_saturation_is_flagged(tmp_path: Path) -> None:
    """A saturated generator is named with its CPU figure from the JSON."""
    resources = {"memory_peak_mb": 80.0, "generator_cpu_percent": 97.5, "generator_saturated": True}
    constant_scenario(tmp_path, "busy_client", latency_ms=20.0, resources=resources)
    text = render.render(tmp_path)[0].read_text()
    assert "The load generator was saturated at 97.5% CPU" in text


def test_folder_without_reports_still_gets_a_report(tmp_path: Path) -> None:
    """A run that wrote no report (failed early) renders a short report that says so."""
    (tmp_path / "notes.json").write_text('{"not": "a report"}')
    text = render.render(tmp_path)[0].read_text()
    assert "from 0 scenario reports" in text and "No scenario report was written" in text


def test_cli_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`python -m loadkit.render` on a missing folder prints one line and exits 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadkit.render", str(tmp_path / "absent")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_cli_output_option_writes_elsewhere_with_working_links(tmp_path: Path) -> None:
    """--output writes the Markdown where asked, with chart links relative to it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    constant_scenario(run_dir, "one", latency_ms=10.0)
    out = tmp_path / "docs" / "REPORT.md"
    proc = subprocess.run(
        [sys.executable, "-m", "loadkit.render", str(run_dir), "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    links = re.findall(r"!\[[a-z]+\]\(([^)]+)\)", out.read_text())
    assert links and all((out.parent / link).resolve().is_file() for link in links)


def test_charts_dir_option_and_regeneration_command(tmp_path: Path) -> None:
    """--charts-dir puts the PNGs elsewhere; the report names the command that regenerates it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    constant_scenario(run_dir, "one", latency_ms=10.0)
    out, pngs = tmp_path / "docs" / "REPORT.md", tmp_path / "docs" / "img"
    assert render.main([str(run_dir), "--output", str(out), "--charts-dir", str(pngs)]) == 0
    text = out.read_text()
    assert f"`python -m loadkit.render {run_dir} --output {out} --charts-dir {pngs}`" in text
    assert (pngs / "one_latency.png").is_file() and "](img/one_latency.png)" in text
    assert not (run_dir / "charts").exists()


def test_personas_uploads_and_error_counts_are_rendered(tmp_path: Path) -> None:
    """A recorder fed by two personas, with a repeated error, and an uploads block: report.md shows
    a row per persona with the recorder's counts, the upload MB/s and each error's count."""
    from loadkit.measure.recording import RunRecorder
    from loadkit.measure.upload_figures import UploadFigures

    rec = RunRecorder()
    rec.start()
    for i in range(30):
        rec.record("GET /api/sessions/", 0.004 + i / 10_000, status=200,
                   persona="RealisticTherapist")  # fmt: skip
    for _ in range(3):
        rec.record("probe GET /api/sessions/", 0.002, status=500, error_kind="http_5xx",
                   message="server error", persona="RateLimitProber")  # fmt: skip
    uploads = UploadFigures()
    uploads.record(5_000_000, 5_000_000, 0.5, ok=True)
    summary = rec.summary(duration_s=10.0)
    report = {"schema": "therapybridge-loadtest/1", "test_name": "locust_all", "passed": False,
              **summary, "uploads": uploads.block()}  # fmt: skip
    (tmp_path / "locust_all.json").write_text(json.dumps(report))
    text = render.render(tmp_path)[0].read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.count("|") > 8}
    assert "| 30 | 0 |" in rows["RealisticTherapist"] and "| 3 | 3 |" in rows["RateLimitProber"]
    mb_per_s = uploads.block()["mb_per_s"]
    assert f"mb_per_s {mb_per_s:g}" in text or f"mb_per_s {mb_per_s}" in text, text
    error_row = next(line for line in text.splitlines() if "server error" in line)
    assert "| 3 |" in error_row


def test_the_upload_transaction_and_its_failures_are_rendered(tmp_path: Path) -> None:
    """The report's upload -> processed block reaches report.md: how many ended how, the p95, and
    the server's error message of the failed ones (a deployed run's 5 of 5 failed once showed
    nowhere)."""
    from loadkit.measure.transactions import UploadTransactions

    followed = UploadTransactions()
    followed.record("processed", 0.81, "server")
    for _ in range(2):
        followed.record("failed", None, None, "OPENAI_API_KEY not found in environment")
    transactions = followed.block(poll_s=2.0)
    block = transactions["upload_to_processed"]
    report = {"schema": "therapybridge-loadtest/1", "test_name": "locust_all", "passed": False,
              "total_requests": 3, "transactions": transactions}  # fmt: skip
    (tmp_path / "locust_all.json").write_text(json.dumps(report))
    text = render.render(tmp_path)[0].read_text()
    line = next(x for x in text.splitlines() if x.startswith("Transaction upload -> processed"))
    assert "count 3, processed 1, failed 2" in line, line
    assert f"response_time_p95_ms {block['response_time_p95_ms']:g}" in line, line
    assert "- failed 2 x: the server said OPENAI_API_KEY not found in environment" in text
