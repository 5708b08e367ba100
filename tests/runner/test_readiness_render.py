"""report.render_readiness: a run folder of real short loads (plus a capacity.json test input)
becomes readiness.md with every section, its figures read from the JSON, and "not enough data"
wherever an input is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadkit.report import (
    capacity_charts,
    render_capacity,
    render_readiness,
    scenario_verdict,
    writer,
)
from loadkit.report.markdown import fmt
from tests.runner import markdown as md
from tests.runner.readiness_input import capacity_report
from tests.runner.reports import real_scenario
from tests.runner.tiny_server import serve

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "Executive summary",
    "Environment",
    "Scenario results",
    "Capacity",
    "Bottleneck analysis",
    "Where the server's CPU went",
    "Scaling recommendations",
    "What to monitor in production",
)
LIMIT_NAME = "rate_limit_enforcement[default_limit]"


def _as_limit_scenario(report: dict, run_dir: Path, defects: list | None = None) -> dict:
    """The real report relabelled as the default-limit scenario (limit 100 per 60 s), with
    ``defects`` added and its verdict judged again: test input around a measured run."""
    report = dict(report, test_name=LIMIT_NAME, defects=defects or [])
    report["parameters"] = dict(report["parameters"], limit=100, window_s=60.0)
    report["verdict"], report["reason"] = scenario_verdict.judge(report)
    writer.write_report(report, run_dir)
    return report


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two real short scenarios, run once; copied per test."""
    run_dir = tmp_path_factory.mktemp("scenarios")
    with serve() as (url, _):
        limited = real_scenario(run_dir, url, "limited", duration_s=1.5)
        real_scenario(run_dir, url, "reads", duration_s=1.5)
    (run_dir / "limited.json").unlink()
    _as_limit_scenario(limited, run_dir)
    info = {"preset": "readiness", "target": url, "server": "reference backend (test)"}
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def _folder(scenarios: Path, tmp_path: Path, **capacity: object) -> Path:
    run_dir = tmp_path / "20260101T000000Z_readiness"
    run_dir.mkdir()
    for path in scenarios.iterdir():
        (run_dir / path.name).write_bytes(path.read_bytes())
    if capacity.pop("with_capacity", True):
        capacity_report(run_dir, **capacity)
    return run_dir


def test_every_section_is_rendered_from_the_json(scenarios: Path, tmp_path: Path) -> None:
    """All sections appear; the steps table and the headline figures are capacity.json's."""
    run_dir = _folder(scenarios, tmp_path)
    path, judged = render_readiness.render(run_dir)
    text = path.read_text(encoding="utf-8")
    assert path == run_dir / "readiness.md"
    for heading in SECTIONS:
        assert f"\n## {heading}" in text, heading
    for heading in ("At the knee", "Evidence by scenario", "Server CPU per endpoint", "Findings"):
        assert f"\n### {heading}" in md.section(text, "Bottleneck analysis"), heading
    capacity = json.loads((run_dir / "capacity.json").read_text())
    steps = md.section(text, "Capacity")
    for step in capacity["steps"]:
        cells = md.row(steps, fmt(step["offered_rps"]))
        for cell, (_, key) in zip(cells, render_capacity.STEP_FIELDS[:-1], strict=False):
            assert md.same_figure(cell, step[key]), (key, cell, step[key])
    summary = md.section(text, "Executive summary")
    assert md.row(summary, "capacity (max sustainable rate)")[1].startswith("40 req/s offered")
    assert (
        md.row(summary, "first bottleneck")[1]
        == f"server_cpu: {capacity['limiting_factor']['summary']}"
    )
    assert "shared this machine's" in md.row(summary, "machine")[1]
    assert f"**Verdict: {judged.verdict.upper()}**" in summary
    counted = md.row(summary, "scenarios meeting their targets")[1]
    assert counted == "2 of 2"  # the two scenarios; capacity.json is not one
    assert md.row(md.section(text, "Environment"), "scenarios meeting their targets")[1] == counted


def test_capacity_charts_are_linked_and_copied_with_charts_dir(
    scenarios: Path, tmp_path: Path
) -> None:
    """The two capacity charts are linked from the run folder, or copied into --charts-dir and
    linked from --output (as BASELINE_REPORT.md is written)."""
    run_dir = _folder(scenarios, tmp_path)
    text = render_readiness.render(run_dir)[0].read_text()
    assert "![capacity_rate](capacity_rate.png)" in text
    out, pngs = tmp_path / "repo" / "BASELINE.md", tmp_path / "repo" / "docs" / "baseline"
    assert (
        render_readiness.main([str(run_dir), "--output", str(out), "--charts-dir", str(pngs)]) == 0
    )
    text = out.read_text()
    assert (
        f"`python -m loadkit.report.render_readiness {run_dir} --output {out} --charts-dir {pngs}`"
        in text
    )
    for name in capacity_charts.CHARTS:
        assert (pngs / name).is_file() and f"](docs/baseline/{name})" in text


def test_recommendations_name_their_figures(scenarios: Path, tmp_path: Path) -> None:
    """Each recommendation states what it rests on; the pool one quotes the knee's in-use figure
    and the scenarios' measured limit."""
    run_dir = _folder(scenarios, tmp_path)
    text = md.section(render_readiness.render(run_dir)[0].read_text(), "Scaling recommendations")
    assert text.count("  - rests on: ") == 3
    assert "pool_checked_out_max 5 at the step at 60 req/s offered" in text
    assert f"{LIMIT_NAME}: limit 100 per 60 s" in text
    assert "not enough data" not in text


def test_missing_capacity_says_not_enough_data(scenarios: Path, tmp_path: Path) -> None:
    """Without capacity.json: ready with caveats, and every capacity-based part says not enough
    data (summary, capacity, knee, recommendations, monitoring)."""
    run_dir = _folder(scenarios, tmp_path, with_capacity=False)
    path, judged = render_readiness.render(run_dir)
    text = path.read_text()
    assert judged.verdict == "ready with caveats"
    summary = md.section(text, "Executive summary")
    assert "capacity.json missing" in summary
    assert md.row(summary, "capacity (max sustainable rate)")[1].startswith("not enough data")
    assert "Not enough data: the run folder has no capacity.json." in md.section(text, "Capacity")
    assert "Not enough data: not enough data" not in text
    recommendations = md.section(text, "Scaling recommendations")
    assert (
        recommendations.count("not enough data") == 3 and recommendations.count("  - needs: ") == 3
    )
    assert "Not enough data" in md.section(text, "What to monitor in production")


def test_defect_makes_it_not_ready_and_is_named(scenarios: Path, tmp_path: Path) -> None:
    """A defect record in a report: verdict not ready, the id and route in the summary; the CLI
    exits 1."""
    run_dir = _folder(scenarios, tmp_path)
    report = json.loads((run_dir / f"{LIMIT_NAME}.json").read_text())
    defect = {"id": "limiter-500", "route": "GET /api/sessions/", "message": "answered 500"}
    _as_limit_scenario(report, run_dir, [defect | {"evidence": {"statuses": {"500": 3}}}])
    assert render_readiness.main([str(run_dir)]) == 1
    summary = md.section((run_dir / "readiness.md").read_text(), "Executive summary")
    assert "**Verdict: NOT READY**" in summary
    assert md.row(summary, "defects found")[1] == "`limiter-500` (GET /api/sessions/)"


def test_cli_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A folder that does not exist: one line on stderr, exit 2, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadkit.report.render_readiness", str(tmp_path / "absent")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
