"""Per-endpoint server CPU cost: which endpoint burns the server's CPU (password hashing at login).

The server monitor gives CPU over time, not per request. Three estimates, the best
one the data allows:
- ``regression``: the server's CPU seconds in each monitor interval against how many requests of
  each endpoint started in it, fitted by non-negative least squares (CPU = sum of cost x count):
  needs at least as many intervals as endpoints, and a mix that varies over time;
- ``requests_share``: the run's CPU per request, when the mix never varies (one endpoint);
- ``time_share``: the run's CPU split by each endpoint's share of server time (requests x average
  latency), for a Locust run, whose recorder keeps no per-endpoint time series; latency includes
  waiting, so this over-charges slow endpoints.
All are estimates, and the report's ``cost.method`` says which one it is; ``cost.intervals`` is the
number of CPU intervals it rests on (None for ``time_share``: the run's CPU average). An endpoint's
CPU per request never exceeds its own average response time (one request runs on one core at a
time): a larger estimate is capped at it and marked ``capped``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

MIN_ROWS_PER_ENDPOINT = 2
MAX_FIT_ROUNDS = 20


def cpu_intervals(server_rows: Iterable[Mapping]) -> list[tuple[float, float, float]]:
    """(start, end, CPU seconds) per monitor interval, from the server's samples {t, server_rss_mb,
    server_cpu_percent} (each CPU figure covers the time since the sample before it)."""
    rows = sorted(
        (r["t"], r.get("server_cpu_percent")) for r in server_rows if r.get("server_rss_mb")
    )
    out = []
    for (prev, _), (t, cpu) in zip(rows, rows[1:], strict=False):
        if cpu is not None and t > prev:
            out.append((prev, t, cpu / 100 * (t - prev)))
    return out


def _counts(samples: Iterable, intervals: list[tuple[float, float, float]], names: list[str]):
    index = {n: i for i, n in enumerate(names)}
    counts = np.zeros((len(intervals), len(names)))
    starts = np.array([a for a, _, _ in intervals])
    for s in samples:
        row = int(np.searchsorted(starts, s.at, side="right")) - 1
        if 0 <= row < len(intervals) and s.at <= intervals[row][1]:
            counts[row, index[s.endpoint]] += 1
    return counts


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with negative coefficients pinned to zero (small active-set loop)."""
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    for _ in range(MAX_FIT_ROUNDS):
        if not active:
            break
        fit, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (fit >= 0).all():
            coef[active] = fit
            break
        active = [a for a, f in zip(active, fit, strict=True) if f > 0]
    return coef


def estimate(samples: list, cpu_rows: Iterable[Mapping]) -> dict | None:
    """Cost per endpoint from traced requests (``endpoint``, ``at``) and server CPU rows."""
    intervals = cpu_intervals(cpu_rows)
    names = sorted({s.endpoint for s in samples})
    if not intervals or not names:
        return None
    counts = _counts(samples, intervals, names)
    cpu = np.array([c for _, _, c in intervals])
    total_cpu = float(cpu.sum())
    varied = len(intervals) >= MIN_ROWS_PER_ENDPOINT * len(names) and (
        np.linalg.matrix_rank(counts) == len(names)
    )
    avg_ms = [_avg_ms(samples, name) for name in names]
    if len(names) > 1 and varied:
        coef = _nnls(counts, cpu)
        block = _block("regression", names, counts.sum(axis=0), coef, total_cpu, avg_ms)
    else:
        requests = counts.sum(axis=0)
        coef = np.where(requests > 0, total_cpu / max(requests.sum(), 1), 0.0)
        block = _block("requests_share", names, requests, coef, total_cpu, avg_ms)
    return {**block, "intervals": len(intervals)}


def _avg_ms(samples: list, name: str) -> float | None:
    """The average response time (ms) of one endpoint's answered requests."""
    times = [s.latency_s for s in samples if s.endpoint == name and s.latency_s is not None]
    return sum(times) / len(times) * 1000 if times else None


def time_share(endpoints: Mapping[str, Mapping], cpu_seconds: float | None) -> dict | None:
    """Cost per endpoint by share of server time (requests x average latency)."""
    rows = [
        (n, e.get("requests") or 0, e.get("response_time_avg_ms"))
        for n, e in endpoints.items()
        if e.get("requests") and e.get("response_time_avg_ms") is not None
    ]
    busy = sum(q * a for _, q, a in rows)
    if cpu_seconds is None or busy <= 0:
        return None
    names = [n for n, _, _ in rows]
    requests = np.array([q for _, q, _ in rows], dtype=float)
    coef = np.array([cpu_seconds * (a / busy) for _, _, a in rows])
    avg_ms = [a for _, _, a in rows]
    return {**_block("time_share", names, requests, coef, cpu_seconds, avg_ms), "intervals": None}


def _endpoint(requests: float, coef: float, share: float, avg_ms: float | None) -> dict:
    """One endpoint's figures; CPU per request capped at the request's own average time."""
    ms = float(coef) * 1000
    capped = avg_ms is not None and ms > avg_ms
    return {
        "requests": int(requests),
        "cpu_ms_per_request": round(min(ms, avg_ms) if capped else ms, 3),
        "response_time_avg_ms": None if avg_ms is None else round(avg_ms, 3),
        "capped": capped,
        "estimate_ms": round(ms, 3),
        "cpu_share_percent": share,
    }


def _block(method: str, names, requests, coef, total_cpu: float, avg_ms) -> dict:
    spent = [float(c * q) for c, q in zip(coef, requests, strict=True)]
    total_spent = sum(spent) or 1.0
    rows = zip(names, requests, coef, spent, avg_ms, strict=True)
    return {
        "method": method,
        "server_cpu_s": round(total_cpu, 3),
        "endpoints": {
            name: _endpoint(q, c, round(100 * s / total_spent, 1), a) for name, q, c, s, a in rows
        },
    }
