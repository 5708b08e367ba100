"""The capacity search's two charts (matplotlib, Agg), drawn from capacity.json's own fields.

``capacity_rate.png``: achieved against offered rate, the ideal diagonal beside it;
``capacity_latency.png``: p50/p95/p99 against offered rate, the p95 limit and the knee marked.
With several worker counts (``scaling``) each count gets its own lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

RATE_CHART = "capacity_rate.png"
LATENCY_CHART = "capacity_latency.png"
CHARTS = (RATE_CHART, LATENCY_CHART)


def _runs(report: Mapping[str, Any]) -> list[tuple[str, list[Mapping], Any]]:
    """(label, steps sorted by offered rate, max_sustainable_rps) per worker count."""
    by_workers = (report.get("scaling") or {}).get("by_workers") or []
    if by_workers:
        return [
            (f"{w.get('server_workers')} workers", _sorted(w.get("steps")),
             w.get("max_sustainable_rps"))
            for w in by_workers
        ]  # fmt: skip
    return [("", _sorted(report.get("steps")), report.get("max_sustainable_rps"))]


def _sorted(steps: Sequence[Mapping] | None) -> list[Mapping]:
    return sorted((s for s in steps or [] if s.get("offered_rps")), key=lambda s: s["offered_rps"])


def _points(steps: Sequence[Mapping], key: str) -> tuple[list[float], list[float]]:
    rows = [(s["offered_rps"], s.get(key)) for s in steps if isinstance(s.get(key), int | float)]
    return [x for x, _ in rows], [y for _, y in rows]


def _finish(fig: Any, axis: Any, title: str, y_label: str, path: Path) -> Path:
    axis.set_xlabel("offered rate (requests/s)")
    axis.set_ylabel(y_label)
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def draw_rate(report: Mapping[str, Any], path: Path) -> Path:
    """Achieved against offered rate, per worker count, with the ideal line."""
    fig, axis = plt.subplots(figsize=(8, 4), dpi=100)
    try:
        top = 0.0
        for label, steps, best in _runs(report):
            xs, ys = _points(steps, "achieved_rps")
            top = max([top, *xs])
            axis.plot(xs, ys, marker="o", label=f"achieved {label}".strip())
            if isinstance(best, int | float):
                name = " ".join(f"max sustainable {label} {best:g} rps".split())
                axis.axvline(best, linestyle=":", color="tab:green", label=name)
        axis.plot([0, top], [0, top], linestyle="--", color="tab:gray", label="achieved = offered")
        title = "Capacity: achieved vs offered rate"
        return _finish(fig, axis, title, "achieved (requests/s)", path)
    finally:
        plt.close(fig)


def draw_latency(report: Mapping[str, Any], path: Path) -> Path:
    """p50/p95/p99 against offered rate, the p95 limit and the knee marked."""
    fig, axis = plt.subplots(figsize=(8, 4), dpi=100)
    try:
        for label, steps, _ in _runs(report):
            for key, style in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
                xs, ys = _points(steps, key)
                axis.plot(xs, ys, linestyle=style, marker="o", markersize=3,
                          label=f"{key.split('_')[0]} {label}".strip())  # fmt: skip
        limit = (report.get("slo") or {}).get("p95_ms")
        if isinstance(limit, int | float):
            axis.axhline(limit, color="tab:red", linewidth=1, label=f"p95 limit {limit:g} ms")
        knee = (report.get("limiting_factor") or {}).get("evidence", {}).get("offered_rps")
        if isinstance(knee, int | float):
            axis.axvline(knee, color="black", linestyle="-.", linewidth=1,
                         label=f"knee {knee:g} rps")  # fmt: skip
        axis.set_yscale("symlog", linthresh=10)
        return _finish(fig, axis, "Capacity: latency vs offered rate", "ms (log above 10)", path)
    finally:
        plt.close(fig)


def draw_all(report: Mapping[str, Any], directory: Path) -> dict[str, Path]:
    """Both charts into ``directory`` when the report has steps: {file name: path}."""
    if not any(steps for _, steps, _ in _runs(report)):
        return {}
    return {
        RATE_CHART: draw_rate(report, Path(directory) / RATE_CHART),
        LATENCY_CHART: draw_latency(report, Path(directory) / LATENCY_CHART),
    }
