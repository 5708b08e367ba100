"""loadkit.compare: two runs compared scenario by scenario with the targets file's tolerances."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadkit.report import compare, render
from loadkit.verdicts import slo
from tests.runner.reports import constant_scenario

ROOT = Path(__file__).resolve().parents[2]
OLD_MS = 100.0


@pytest.fixture
def tolerance() -> float:
    """The default profile's relative p95 tolerance, read from targets.toml (not typed here)."""
    return float(slo.load_profile("default").compare["response_time_p95_ms"])


def _runs(tmp_path: Path, new_ms: float) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    constant_scenario(old, "concurrent_sessions", latency_ms=OLD_MS)
    constant_scenario(new, "concurrent_sessions", latency_ms=new_ms)
    return old, new


def _p95(result: compare.Comparison) -> compare.Delta:
    return next(d for d in result.deltas if d.metric == "response_time_p95_ms")


def test_slowdown_past_tolerance_is_a_regression(tmp_path: Path, tolerance: float) -> None:
    """A p95 1.5x the tolerance slower is flagged, and the CLI exits 1 naming it."""
    old, new = _runs(tmp_path, OLD_MS * (1 + tolerance * 1.5))
    result = compare.compare_dirs(old, new, profile="default")
    assert _p95(result).regression
    proc = subprocess.run(
        [sys.executable, "-m", "loadkit.compare", str(old), str(new), "--profile", "default"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any(
        "response_time_p95_ms" in ln and "REGRESSION" in ln for ln in proc.stdout.splitlines()
    )


def test_slowdown_within_tolerance_is_not_flagged(tmp_path: Path, tolerance: float) -> None:
    """A p95 half the tolerance slower is reported but not flagged; the CLI exits 0."""
    old, new = _runs(tmp_path, OLD_MS * (1 + tolerance * 0.5))
    result = compare.compare_dirs(old, new, profile="default")
    delta = _p95(result)
    assert delta.new > delta.old and not delta.regression and not result.regressions
    proc = subprocess.run(
        [sys.executable, "-m", "loadkit.compare", str(old), str(new)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_throughput_drop_and_error_points_use_their_own_direction_and_unit() -> None:
    """Lower throughput is worse (relative); error rate is absolute percentage points."""
    rps = compare.parse_tolerance("requests_per_second", 0.2)
    assert compare.is_regression("requests_per_second", 100.0, 79.0, rps)
    assert not compare.is_regression("requests_per_second", 100.0, 81.0, rps)
    assert not compare.is_regression("requests_per_second", 100.0, 500.0, rps)
    errors = compare.parse_tolerance("error_rate_percent", 1.0)
    assert errors.absolute == 1.0
    assert compare.is_regression("error_rate_percent", 0.0, 1.5, errors)
    assert not compare.is_regression("error_rate_percent", 0.0, 0.5, errors)


def test_faster_run_is_never_a_regression(tmp_path: Path) -> None:
    """Getting faster by any amount is not flagged."""
    old, new = _runs(tmp_path, OLD_MS / 4)
    assert not compare.compare_dirs(old, new, profile="default").regressions


def test_render_compare_adds_a_section_and_exits_1(tmp_path: Path, tolerance: float) -> None:
    """`render --compare` adds the comparison table with verdicts, and exits 1 on a regression."""
    old, new = _runs(tmp_path, OLD_MS * (1 + tolerance * 2))
    constant_scenario(old, "only_before", latency_ms=OLD_MS)
    code = render.main([str(new), "--compare", str(old), "--profile", "default"])
    assert code == 1
    text = (new / "report.md").read_text()
    section = text[text.index("## Comparison with old") :]
    row = next(ln for ln in section.splitlines() if "| response_time_p95_ms |" in ln)
    assert row.endswith("| REGRESSION |") and f"{tolerance * 100:g}%" in row
    assert "`only_before` ran only in old" in section


def test_bad_folder_or_profile_is_one_line_exit_2(tmp_path: Path) -> None:
    """A missing run folder or an unknown profile: one line, exit 2, no traceback."""
    old, new = _runs(tmp_path, OLD_MS)
    for args in ([str(old), str(tmp_path / "absent")], [str(old), str(new), "--profile", "nope"]):
        proc = subprocess.run(
            [sys.executable, "-m", "loadkit.compare", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
