"""verdicts.drift's arithmetic: the least-squares slope and interval, and the verdict's edges."""

from __future__ import annotations

import pytest

from loadkit.verdicts import drift


def test_fit_recovers_a_line_and_its_interval_covers_the_slope() -> None:
    """y = 2x + 1 with alternating noise: slope ~2, its 95% interval contains 2."""
    xs = [float(i) for i in range(20)]
    ys = [2 * x + 1 + (0.5 if i % 2 else -0.5) for i, x in enumerate(xs)]
    line = drift.fit(xs, ys)
    assert line is not None and line.slope == pytest.approx(2.0, abs=0.05)
    low, high = line.ci95()
    assert low < 2.0 < high and high - low < 0.2


def test_a_short_run_is_too_few_samples() -> None:
    """Ten 1 s intervals of growing RSS: "too few samples", not a leak."""
    rows = [{"t": t, "server_rss_mb": 100 + 10 * t} for t in range(10)]
    leak = drift.drift_block(rows, interval_s=1)["leak"]
    assert leak["verdict"] == "too few samples" and "5 intervals" in leak["reason"]


def test_an_hour_of_flat_rss_is_no_leak_and_steady_growth_is_a_leak() -> None:
    """An hour at 16 s intervals: +-1 MB noise is "no leak"; +100 MB/h is "leak"."""
    flat = [{"t": t, "server_rss_mb": 200 + (1 if t % 32 else -1)} for t in range(0, 3600, 16)]
    assert drift.drift_block(flat, interval_s=16)["leak"]["verdict"] == "no leak"
    rising = [{"t": r["t"], "server_rss_mb": r["server_rss_mb"] + r["t"] / 36} for r in flat]
    block = drift.drift_block(rising, interval_s=16)
    assert block["leak"]["verdict"] == "leak"
    assert block["slopes_per_hour"]["server_rss_mb"]["per_hour"] == pytest.approx(100, rel=0.05)


def test_report_md_shows_slopes_per_hour_only_for_ten_minutes_of_steady_state() -> None:
    """A one-minute run's drift section says its slopes are not shown (an hourly rate fitted on
    60 s is warm-up noise); an hour's shows the table and says what it was fitted on."""
    from loadkit.report import render_drift

    minute = [{"t": t, "server_rss_mb": 100 + t, "p95_ms": 10.0} for t in range(60)]
    text = "\n".join(render_drift.section({"drift": drift.drift_block(minute, interval_s=1)}))
    assert "Slopes per hour not shown: 60 s of steady state" in text and "| figure |" not in text
    hour = [{"t": t, "server_rss_mb": 100 + t / 36, "p95_ms": 10.0} for t in range(0, 3600, 16)]
    text = "\n".join(render_drift.section({"drift": drift.drift_block(hour, interval_s=16)}))
    assert "least squares over the whole steady state" in text and "| server RSS | +100" in text
