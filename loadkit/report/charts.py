"""PNG charts of one scenario (matplotlib, Agg backend, no display needed).

Five charts: the latency distribution (every answered request), and over time: latency
percentiles, requests/s, server RSS and CPU, the DB pool in connections (in use, open, capacity).
A run shorter than loadkit.report.distribution.FINE_BELOW_S is drawn from its finer time series
(``timeseries_fine``), so a sub-second scenario still has points. Axes start at 0 (RSS, CPU,
connections, latency), so a few MB of growth do not look like a ramp; legends sit below the plot,
off the data. A chart whose series holds no value (server figures of a remote target) is not drawn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

# chart key -> (title, y label, [(field, legend)], second y axis [(field, legend, y label)])
CHARTS: dict[str, tuple[str, str, list[tuple[str, str]], list[tuple[str, str, str]]]] = {
    "latency": (
        "Latency percentiles",
        "ms",
        [("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")],
        [],
    ),
    "throughput": (
        "Requests per second",
        "requests/s",
        [("requests", "requests"), ("errors", "errors")],
        [],
    ),
    "server": (
        "Server memory and CPU",
        "RSS (MB)",
        [("server_rss_mb", "RSS MB")],
        [("server_cpu_percent", "CPU %", "CPU (% of one core)")],
    ),
    "pool": (
        "DB pool connections",
        "connections",
        [("pool_open", "open"), ("pool_checked_out", "in use")],  # in use on top where they meet
        [],
    ),
}
DISTRIBUTION = "distribution"
ALL_CHARTS = (DISTRIBUTION, *CHARTS)
RATE_FIELDS = ("requests", "errors")  # counts per step in the fine series: drawn per second
FEW_POINTS = 30  # below this many points a line also gets markers


def safe_name(name: str) -> str:
    """A file-name-safe form of a scenario name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"


def _points(
    series: Sequence[Mapping[str, Any]], field: str, scale: float = 1.0
) -> tuple[list[float], list[float]]:
    """(t, value x scale) pairs of one field, skipping rows where it is missing."""
    xs, ys = [], []
    for point in series:
        value = point.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            xs.append(float(point.get("t", len(xs))))
            ys.append(float(value) * scale)
    return xs, ys


def series_of(report: Mapping[str, Any]) -> tuple[list[dict], float]:
    """(rows, step in seconds): the fine time series when the report has one, else per second."""
    fine = report.get("timeseries_fine") or {}
    if fine.get("rows") and fine.get("step_s"):
        return list(fine["rows"]), float(fine["step_s"])
    return list(report.get("timeseries") or []), 1.0


def has_data(series: Sequence[Mapping[str, Any]], chart: str) -> bool:
    """Whether any field of the chart has at least one value."""
    _, _, left, right = CHARTS[chart]
    fields = [f for f, _ in left] + [f for f, _, _ in right]
    return any(_points(series, f)[0] for f in fields)


def _line(axis: Any, xs: list[float], ys: list[float], **style: Any) -> None:
    marker = "o" if len(xs) < FEW_POINTS else None
    axis.plot(xs, ys, marker=marker, markersize=3, linewidth=1.2, **style)


def _plot(axis: Any, series: Sequence[Mapping], lines: list[tuple[str, str]], step: float) -> None:
    for field, label in lines:
        xs, ys = _points(series, field, 1 / step if field in RATE_FIELDS else 1.0)
        if xs:
            _line(axis, xs, ys, label=label)


def _legend_below(fig: Any, axis: Any, handles: list, labels: list) -> None:
    if handles:
        axis.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.28),
            ncol=len(handles), fontsize="small", frameon=False,
        )  # fmt: skip
    fig.tight_layout()


def _capacity(axis: Any, capacity: Any) -> None:
    if isinstance(capacity, int | float) and not isinstance(capacity, bool):
        axis.axhline(capacity, color="tab:gray", linestyle="--", linewidth=1, label="capacity")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def draw(
    series: Sequence[Mapping[str, Any]], chart: str, title: str, path: Path, **kw: Any
) -> Path:
    """Draw one time chart of ``series`` to ``path`` (PNG); keywords as for `figure`."""
    fig = figure(series, chart, title, **kw)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def figure(
    series: Sequence[Mapping[str, Any]],
    chart: str,
    title: str,
    *,
    step: float = 1.0,
    capacity: Any = None,
    span_s: float | None = None,
) -> Any:
    """One time chart of ``series`` (rows ``step`` seconds apart) as a matplotlib figure (the
    caller closes it); the x axis covers the run (``span_s``) even when a monitor sampled once."""
    label, y_label, left, right = CHARTS[chart]
    if chart == "throughput":
        label += " (by when they ended)" if step < 1 else " (by intended start)"
    fig, axis = plt.subplots(figsize=(8, 3.6), dpi=100)
    try:
        _plot(axis, series, left, step)
        if chart == "pool":
            _capacity(axis, capacity)
        axis.set_xlabel("seconds since start" + (f" ({step:g} s steps)" if step < 1 else ""))
        axis.set_ylabel(y_label)
        axis.set_title(f"{title}: {label}")
        axis.grid(True, alpha=0.3)
        axis.set_ylim(0, max(axis.get_ylim()[1], 1e-9) * 1.1)  # from 0, a line never on the frame
        last = max((float(r.get("t", 0)) for r in series), default=0.0) + step
        axis.set_xlim(0, max(last, span_s or 0.0))
        handles, labels = axis.get_legend_handles_labels()
        if right:
            twin = axis.twinx()
            twin.set_ylabel(right[0][2])
            for field, line_label, _ in right:
                xs, ys = _points(series, field)
                if xs:
                    _line(twin, xs, ys, label=line_label, color="tab:red")
                    twin.set_ylim(0, max(100.0, max(ys) * 1.1))
            more_h, more_l = twin.get_legend_handles_labels()
            handles, labels = handles + more_h, labels + more_l
        _legend_below(fig, axis, handles, labels)
    except BaseException:
        plt.close(fig)
        raise
    return fig


def draw_distribution(block: Mapping[str, Any], title: str, path: Path) -> Path:
    """The latency distribution: requests per latency bin, log-spaced bins on a log axis."""
    edges, counts = list(block["edges_ms"]), list(block["counts"])
    fig, axis = plt.subplots(figsize=(8, 3.6), dpi=100)
    try:
        widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
        axis.bar(edges[:-1], counts, width=widths, align="edge", color="tab:blue")
        if edges[-1] > 10 * edges[0]:
            axis.set_xscale("log")
        axis.set_xlabel("response time (ms)")
        axis.set_ylabel("requests")
        axis.set_title(f"{title}: latency distribution ({sum(counts)} answered requests)")
        axis.grid(True, alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def draw_all(report: Mapping[str, Any], directory: Path) -> dict[str, Path]:
    """Every chart the report has data for: {chart key: PNG path}."""
    series, step = series_of(report)
    name = safe_name(str(report.get("test_name", "run")))
    drawn = {}
    block = report.get("latency_distribution") or {}
    if block.get("counts") and sum(block["counts"]):
        drawn[DISTRIBUTION] = draw_distribution(
            block, name, directory / f"{name}_{DISTRIBUTION}.png"
        )
    capacity = (report.get("db_pool") or {}).get("capacity")
    span = report.get("duration_seconds")
    span = float(span) if isinstance(span, int | float) else None
    for chart in CHARTS:
        if has_data(series, chart):
            path = directory / f"{name}_{chart}.png"
            drawn[chart] = draw(
                series, chart, name, path, step=step, capacity=capacity, span_s=span
            )
    return drawn
