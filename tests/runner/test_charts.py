"""Charts that mean something: a sub-second scenario gets a latency distribution and a finer time
series with points; legends sit off the data; RSS, CPU and pool axes start at 0; the pool chart
draws connections in use, open and the capacity."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from loadkit.report import charts, render
from tests.runner.reports import real_scenario
from tests.runner.tiny_server import serve

TAB_BLUE = (31, 119, 180)  # matplotlib's first line colour: p50, RSS, "in use"
DATA_COLOURS = (TAB_BLUE, (255, 127, 14), (44, 160, 44))  # the first three: p50, p95, p99


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A real 0.4 s scenario against the tiny server, with server and pool monitors, rendered."""
    run_dir = tmp_path_factory.mktemp("short")
    with serve() as (url, script):
        script.pool = {"size": 5, "max_overflow": 10, "checked_out": 3}
        report = real_scenario(run_dir, url, "burst", duration_s=0.4, concurrency=4)
    render.render(run_dir)
    return run_dir, report


def _pixels(path: Path, colours: tuple[tuple[int, int, int], ...] = (TAB_BLUE,)) -> int:
    """How many pixels of the PNG are near one of ``colours``."""
    with Image.open(path) as image:
        pixels = image.convert("RGB").getdata()
        return sum(1 for p in pixels if any(_near(p, c) for c in colours))


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 25 for a, b in zip(pixel, colour, strict=True))


def test_sub_second_scenario_has_a_fine_series_and_a_distribution(short_run) -> None:
    """Under a second: at least 10 fine rows with latency, and a distribution of every request."""
    _, report = short_run
    assert report["duration_seconds"] < 1 and len(report["timeseries"]) <= 1
    fine = report["timeseries_fine"]
    with_latency = [r for r in fine["rows"] if r["p50_ms"] is not None]
    assert fine["step_s"] < 1 and len(with_latency) >= 5
    assert sum(r["requests"] for r in fine["rows"]) == report["total_requests"]
    dist = report["latency_distribution"]
    assert sum(dist["counts"]) == report["total_requests"] - report["errors_by_kind"]["connection"]
    assert dist["edges_ms"][0] <= report["response_time_min_ms"] + 0.01
    assert dist["edges_ms"][-1] >= report["response_time_max_ms"] - 0.01


def test_sub_second_charts_are_drawn_with_data(short_run) -> None:
    """The latency and distribution PNGs carry far more of the data colours than a legend alone.

    Counted over p50, p95 and p99 together: a p50 that sits on the axis hides most of its own line.
    """
    run_dir, _ = short_run
    for chart in ("latency", "distribution"):
        path = run_dir / "charts" / f"burst_{chart}.png"
        assert path.is_file(), chart
        assert _pixels(path, DATA_COLOURS) > 400, chart


def test_legend_sits_off_the_data_and_axes_start_at_zero(short_run) -> None:
    """Every time chart's legend is outside its plot area; RSS, CPU, pool and latency from 0."""
    _, report = short_run
    series, step = charts.series_of(report)
    for chart in charts.CHARTS:
        fig = charts.figure(series, chart, "burst", step=step, capacity=15)
        try:
            fig.canvas.draw()
            axis = fig.axes[0]
            legend = axis.get_legend()
            assert legend is not None, chart
            box, plot = legend.get_window_extent(), axis.get_window_extent()
            assert box.y1 <= plot.y0, (chart, box, plot)  # below the plot, not on it
            assert all(a.get_ylim()[0] == 0 for a in fig.axes), chart
        finally:
            charts.plt.close(fig)


def test_pool_chart_draws_connections_and_capacity(short_run) -> None:
    """The pool chart's lines are in use, open and capacity; no raw overflow line."""
    _, report = short_run
    series, step = charts.series_of(report)
    fig = charts.figure(series, "pool", "burst", step=step, capacity=15)
    try:
        labels = fig.axes[0].get_legend_handles_labels()[1]
        assert labels == ["open", "in use", "capacity"]
        opened = [
            y for line in fig.axes[0].lines if line.get_label() == "open" for y in line.get_ydata()
        ]
        assert opened and min(opened) >= 0
    finally:
        charts.plt.close(fig)
