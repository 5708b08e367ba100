"""PNG charts of one scenario's per-second timeseries (matplotlib, Agg backend, no display needed).

Four charts: latency percentiles, requests/s, server RSS and CPU, pool checked-out and overflow.
A chart whose series holds no value (e.g. server figures of a remote target) is not drawn.
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
        [("server_cpu_percent", "CPU %", "CPU (%)")],
    ),
    "pool": (
        "DB pool",
        "connections",
        [("pool_checked_out", "checked out"), ("pool_overflow", "overflow")],
        [],
    ),
}


def safe_name(name: str) -> str:
    """A file-name-safe form of a scenario name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"


def _points(series: Sequence[Mapping[str, Any]], field: str) -> tuple[list[float], list[float]]:
    """(t, value) pairs of one field, skipping seconds where it is missing."""
    xs, ys = [], []
    for point in series:
        value = point.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            xs.append(float(point.get("t", len(xs))))
            ys.append(float(value))
    return xs, ys


def has_data(series: Sequence[Mapping[str, Any]], chart: str) -> bool:
    """Whether any field of the chart has at least one value."""
    _, _, left, right = CHARTS[chart]
    fields = [f for f, _ in left] + [f for f, _, _ in right]
    return any(_points(series, f)[0] for f in fields)


def _plot(axis: Any, series: Sequence[Mapping[str, Any]], lines: list[tuple[str, str]]) -> None:
    for field, label in lines:
        xs, ys = _points(series, field)
        if xs:
            axis.plot(xs, ys, label=label, linewidth=1.2)


def draw(series: Sequence[Mapping[str, Any]], chart: str, title: str, path: Path) -> Path:
    """Draw one chart of ``series`` to ``path`` (PNG) and return the path."""
    label, y_label, left, right = CHARTS[chart]
    fig, axis = plt.subplots(figsize=(8, 3.2), dpi=100)
    try:
        _plot(axis, series, left)
        axis.set_xlabel("seconds since start")
        axis.set_ylabel(y_label)
        axis.set_title(f"{title}: {label}")
        axis.grid(True, alpha=0.3)
        handles, labels = axis.get_legend_handles_labels()
        if right:
            twin = axis.twinx()
            twin.set_ylabel(right[0][2])
            for field, line_label, _ in right:
                xs, ys = _points(series, field)
                if xs:
                    twin.plot(xs, ys, label=line_label, color="tab:red", linewidth=1.0)
            more_h, more_l = twin.get_legend_handles_labels()
            handles, labels = handles + more_h, labels + more_l
        if handles:
            axis.legend(handles, labels, loc="upper left", fontsize="small")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def draw_all(report: Mapping[str, Any], directory: Path) -> dict[str, Path]:
    """Every chart the report's timeseries has data for: {chart key: PNG path}."""
    series = report.get("timeseries") or []
    name = safe_name(str(report.get("test_name", "run")))
    drawn = {}
    for chart in CHARTS:
        if has_data(series, chart):
            drawn[chart] = draw(series, chart, name, directory / f"{name}_{chart}.png")
    return drawn
