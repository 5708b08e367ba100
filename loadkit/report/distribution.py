"""Figures for charts of short runs: the latency distribution, and a time series finer than 1 s.

A scenario shorter than a few seconds has one or two rows in the per-second time series: a line
chart of it is empty. The report therefore also carries ``latency_distribution`` (every answered
request, from the run's histogram, in ``DISTRIBUTION_BINS`` log-spaced bins) and, when the run
lasted under ``FINE_BELOW_S``, ``timeseries_fine``: {step_s, rows} with rows of the same fields as
``timeseries`` (requests and errors are counts per step), from the traced requests and the
monitors' own samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from loadkit.measure.histogram import LatencyHistogram, nearest_rank

DISTRIBUTION_BINS = 30
FINE_BELOW_S = 10.0
FINE_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)
FINE_MIN_ROWS = 10
SERVER_FIELDS = ("server_rss_mb", "server_cpu_percent", "pool_checked_out", "pool_open")


def latency_distribution(hist: LatencyHistogram) -> dict | None:
    """{edges_ms, counts}: log-spaced bins from the fastest to the slowest request."""
    data = hist.to_dict()
    if not data["count"]:
        return None
    low, high = max(data["min_us"], 1), max(data["max_us"], 1)
    if high <= low:
        return {"edges_ms": [low / 1000, (high + 1) / 1000], "counts": [data["count"]]}
    ratio = (high / low) ** (1 / DISTRIBUTION_BINS)
    edges = [low * ratio**i for i in range(DISTRIBUTION_BINS + 1)]
    counts = [0] * DISTRIBUTION_BINS
    for key, n in data["buckets"]:
        value = min(max(key, low), high)
        index = min(int(math.log(value / low) / math.log(ratio)), DISTRIBUTION_BINS - 1)
        counts[index] += n
    return {"edges_ms": [round(e / 1000, 4) for e in edges], "counts": counts}


def fine_step(duration_s: float) -> float | None:
    """The coarsest step giving at least FINE_MIN_ROWS rows; None for runs of FINE_BELOW_S+."""
    if duration_s >= FINE_BELOW_S or duration_s <= 0:
        return None
    fits = [s for s in FINE_STEPS_S if duration_s / s >= FINE_MIN_ROWS]
    return max(fits) if fits else FINE_STEPS_S[0]


def _request_rows(samples: Iterable, t0: float, step: float) -> dict[int, dict]:
    groups: dict[int, list] = {}
    for s in samples:
        done = s.at + (s.latency_s or 0.0)  # a burst starts at once: show when each one ended
        if done >= t0:
            groups.setdefault(int((done - t0) / step), []).append(s)
    rows = {}
    for key, group in groups.items():
        ms = [s.latency_s * 1000 for s in group if s.latency_s is not None]
        rows[key] = {"requests": len(group), "errors": sum(1 for s in group if s.error_kind)}
        for p in (50, 95, 99):
            value = nearest_rank(ms, p)
            rows[key][f"p{p}_ms"] = None if value is None else round(value, 3)
    return rows


def _server_rows(server_series: Iterable[Mapping], t0: float, step: float) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    for sample in server_series:
        if sample["t"] < t0:
            continue
        row = rows.setdefault(int((sample["t"] - t0) / step), dict.fromkeys(SERVER_FIELDS))
        for key in SERVER_FIELDS:
            if sample.get(key) is not None:
                row[key] = max(sample[key], row[key] if row[key] is not None else sample[key])
    return rows


def fine_timeseries(
    samples: Sequence, server_series: Iterable[Mapping], t0: float, duration_s: float
) -> dict | None:
    """{step_s, rows} for a run shorter than FINE_BELOW_S with traced requests, else None."""
    step = fine_step(duration_s)
    if step is None or not samples:
        return None
    requests, server = _request_rows(samples, t0, step), _server_rows(server_series, t0, step)
    last = max([*requests, *server, math.ceil(duration_s / step) - 1])
    empty = {"requests": 0, "errors": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    rows = [
        {
            "t": round(k * step, 3),
            **requests.get(k, empty),
            **server.get(k, dict.fromkeys(SERVER_FIELDS)),
        }
        for k in range(last + 1)
    ]
    return {"step_s": step, "rows": rows}
