"""Live metrics of one run, served as Prometheus text on loopback (`--metrics-port PORT`).

One `LiveMetrics` per run holds its own figures (no global registry) and exports them through a
custom collector, so every series carries the run's id as ``testid`` (as k6 does):

    loadkit_requests_total{endpoint}                  counter, warm-up excluded
    loadkit_failures_total{endpoint, kind}            counter, kind: http_4xx http_5xx connection
                                                      timeout check (each from 0)
    loadkit_warmup_requests_total                     counter, requests meant to start in warm-up
    loadkit_request_duration_seconds{endpoint}        histogram of requests that got a response
    loadkit_server_rss_bytes, loadkit_server_cpu_percent        the server's process tree
    loadkit_pool_connections{state}                   state: in_use, open, capacity
    loadkit_canary_p99_seconds, loadkit_users, loadkit_generator_cpu_percent
    loadkit_threshold_passing{metric}                 1 passing, 0 failing (the current verdict)

A gauge nobody has set yet is absent, never a made-up 0. Histogram buckets (seconds, ``le``):
`BUCKETS_S`, 22 finite bounds from 5 ms to 30 s; a `histogram_quantile` p95 lies in the bucket
that holds the exact p95 (it interpolates inside it), so it agrees within one bucket.

Workers that do not serve (Locust workers) ship `take_delta()` to the one that does, which adds
it with `merge_delta()`; `serve(port)` binds 127.0.0.1 only and `stop(linger_s)` keeps answering
for a few seconds, so a last scrape sees the final counts.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from loadkit.measure.recording import ERROR_KINDS

BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4,
    0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0,
)  # fmt: skip
logger = logging.getLogger("loadkit.live_metrics")
LINGER_S = 5.0
PREFIX = "loadkit_"
_GAUGES = {
    "server_rss_bytes": "Resident memory of the server's process tree",
    "server_cpu_percent": "CPU of the server's process tree (100 = one core)",
    "pool_connections": "Database pool connections by state (in_use, open, capacity)",
    "canary_p99_seconds": "p99 of the /live canary so far",
    "users": "Simulated users (or concurrent requests) running now",
    "generator_cpu_percent": "CPU of the load generator's own process (100 = one core)",
    "threshold_passing": "Current verdict of each threshold: 1 passing, 0 failing",
}


class MetricsPortError(Exception):
    """The metrics port cannot be served (taken, privileged, out of range)."""


class _Endpoint:
    """Counts of one endpoint: requests, failures by kind, latency buckets (non-cumulative)."""

    __slots__ = ("requests", "failures", "buckets", "sum_s")

    def __init__(self) -> None:
        self.requests = 0
        self.failures: dict[str, int] = {}
        self.buckets = [0] * (len(BUCKETS_S) + 1)  # the last one is +Inf
        self.sum_s = 0.0

    def add(self, other: list) -> None:
        requests, failures, buckets, sum_s = other
        self.requests += requests
        for kind, n in failures.items():
            self.failures[kind] = self.failures.get(kind, 0) + n
        self.buckets = [a + b for a, b in zip(self.buckets, buckets, strict=True)]
        self.sum_s += sum_s

    def as_list(self) -> list:
        return [self.requests, dict(self.failures), list(self.buckets), self.sum_s]


class LiveMetrics:
    """The live figures of one run, labelled ``testid``; thread-safe."""

    def __init__(self, testid: str) -> None:
        self.testid = testid
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._warmup_requests = 0
        self._gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._server = None
        self._refreshers: list[Callable[[LiveMetrics], None]] = []

    def on_scrape(self, refresh: Callable[[LiveMetrics], None]) -> None:
        """Call ``refresh(self)`` before each scrape (to set gauges from live monitors); an
        exception in it is logged and the scrape still answers."""
        self._refreshers.append(refresh)

    def reset(self) -> None:
        """A new test starts in this process: counters from zero (Prometheus sees a reset)."""
        with self._lock:
            self._endpoints, self._warmup_requests = {}, 0

    def observe_request(
        self, endpoint: str, latency_s: float | None, kind: str | None, *, warmup: bool = False
    ) -> None:
        """Count one request; latency only when a response came; ``warmup``: counted apart."""
        with self._lock:
            if warmup:
                self._warmup_requests += 1
                return
            ep = self._endpoints.get(endpoint)
            if ep is None:
                ep = self._endpoints[endpoint] = _Endpoint()
            ep.requests += 1
            if kind is not None:
                ep.failures[kind] = ep.failures.get(kind, 0) + 1
            if latency_s is not None:
                ep.buckets[bisect_left(BUCKETS_S, latency_s)] += 1
                ep.sum_s += latency_s

    def take_delta(self) -> dict:
        """What was counted since the last call (msgpack-safe), and forget it: a worker's share."""
        with self._lock:
            delta = {name: ep.as_list() for name, ep in self._endpoints.items()}
            warmup, self._endpoints, self._warmup_requests = self._warmup_requests, {}, 0
        return {"endpoints": delta, "warmup_requests": warmup}

    def merge_delta(self, delta: dict) -> None:
        """Add a worker's `take_delta()`."""
        with self._lock:
            for name, counts in delta.get("endpoints", {}).items():
                self._endpoints.setdefault(name, _Endpoint()).add(counts)
            self._warmup_requests += int(delta.get("warmup_requests", 0))

    def _set(self, name: str, value: float | None, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._gauges.setdefault(name, {})
            if value is None:
                series.pop(key, None)
            else:
                series[key] = float(value)

    def set_server(self, rss_mb: float | None, cpu_percent: float | None) -> None:
        """The server's latest RSS (MB, as the monitor samples it) and CPU percent."""
        self._set("server_rss_bytes", None if rss_mb is None else rss_mb * 1024 * 1024)
        self._set("server_cpu_percent", cpu_percent)

    def set_pool(self, in_use: float | None, open_: float | None, capacity: float | None) -> None:
        """The pool's connections in use, open and its capacity (None: unknown, not exported)."""
        for state, value in (("in_use", in_use), ("open", open_), ("capacity", capacity)):
            self._set("pool_connections", value, state=state)

    def set_pool_sample(self, row: dict | None) -> None:
        """The pool from one PoolMonitor sample (size, overflow, max_overflow, checked_out):
        open is size + overflow, capacity size + max_overflow (unknown when it is negative)."""
        row = row or {}
        size, overflow, extra = row.get("size"), row.get("overflow"), row.get("max_overflow")
        opened = None if None in (size, overflow) else size + overflow
        capacity = None if None in (size, extra) or extra < 0 else size + extra
        self.set_pool(row.get("checked_out"), opened, capacity)

    def set_server_sample(self, row: dict | None) -> None:
        """The server from one ServerMonitor sample ({rss_mb, cpu_percent}); None: unknown."""
        row = row or {}
        self.set_server(row.get("rss_mb"), row.get("cpu_percent"))

    def set_canary_p99(self, p99_ms: float | None) -> None:
        """The /live canary's p99 so far, in ms."""
        self._set("canary_p99_seconds", None if p99_ms is None else p99_ms / 1000)

    def set_users(self, users: int | None) -> None:
        """Simulated users running now."""
        self._set("users", users)

    def set_generator_cpu(self, percent: float | None) -> None:
        """The load generator's own CPU percent."""
        self._set("generator_cpu_percent", percent)

    def set_thresholds(self, rows: Iterable[dict]) -> None:
        """Each threshold's current verdict from rows of {metric, passed} (None: unknown)."""
        for row in rows:
            passed = row.get("passed")
            self._set("threshold_passing", None if passed is None else int(bool(passed)),
                      metric=str(row["metric"]))  # fmt: skip

    def collect(self) -> Iterator:
        """The Prometheus collector protocol: every family, labelled with ``testid``."""
        for refresh in list(self._refreshers):
            try:
                refresh(self)
            except Exception:  # a gauge source broke: the counters still answer
                logger.exception("live metrics: refreshing gauges failed")
        with self._lock:
            endpoints = {name: ep.as_list() for name, ep in self._endpoints.items()}
            warmup = self._warmup_requests
            gauges = {name: dict(series) for name, series in self._gauges.items()}
        yield from self._request_families(endpoints, warmup)
        for name, series in gauges.items():
            yield self._gauge_family(name, series)

    def _request_families(self, endpoints: dict, warmup: int) -> Iterator:
        tid = self.testid
        requests = CounterMetricFamily(
            PREFIX + "requests", "Requests sent, by endpoint", labels=["testid", "endpoint"]
        )
        failures = CounterMetricFamily(
            PREFIX + "failures", "Failed requests, by endpoint and error kind",
            labels=["testid", "endpoint", "kind"],
        )  # fmt: skip
        latency = HistogramMetricFamily(
            PREFIX + "request_duration_seconds", "Latency of requests that got a response",
            labels=["testid", "endpoint"],
        )  # fmt: skip
        for name, (count, kinds, buckets, sum_s) in sorted(endpoints.items()):
            requests.add_metric([tid, name], count)
            for kind in sorted({*ERROR_KINDS, *kinds}):  # every kind from 0: rate() sees the first
                failures.add_metric([tid, name, kind], kinds.get(kind, 0))
            latency.add_metric([tid, name], _cumulative(buckets), sum_s)
        warm = CounterMetricFamily(
            PREFIX + "warmup_requests", "Requests meant to start inside the warm-up",
            labels=["testid"],
        )  # fmt: skip
        warm.add_metric([tid], warmup)
        yield from (requests, failures, latency, warm)

    def _gauge_family(self, name: str, series: dict) -> GaugeMetricFamily:
        extra = sorted({key for labels in series for key, _ in labels})
        family = GaugeMetricFamily(PREFIX + name, _GAUGES[name], labels=["testid", *extra])
        for labels, value in sorted(series.items()):
            values = dict(labels)
            family.add_metric([self.testid, *(values.get(k, "") for k in extra)], value)
        return family

    def serve(self, port: int) -> int:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (0: any free port); returns the port."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        try:
            self._server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise MetricsPortError(f"--metrics-port {port}: cannot serve: {reason}") from None
        return self._server.server_port

    def stop(self, linger_s: float = LINGER_S) -> None:
        """Keep serving ``linger_s`` seconds (a last scrape), then close (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        time.sleep(max(0.0, linger_s))
        server.shutdown()
        server.server_close()


def _cumulative(buckets: list[int]) -> list[tuple[str, int]]:
    """Prometheus ``le`` buckets (cumulative, ending with +Inf) from per-bucket counts."""
    out, total = [], 0
    for bound, n in zip((*BUCKETS_S, float("inf")), buckets, strict=True):
        total += n
        out.append(("+Inf" if bound == float("inf") else repr(bound), total))
    return out


def bucket_of(value_s: float) -> tuple[float, float]:
    """The (lower, upper] bounds of the bucket holding ``value_s`` (upper inf past the last)."""
    i = bisect_left(BUCKETS_S, value_s)
    lower = 0.0 if i == 0 else BUCKETS_S[i - 1]
    return lower, BUCKETS_S[i] if i < len(BUCKETS_S) else float("inf")


def newest(monitor: object | None) -> dict | None:
    """A monitor's newest sample (anything with ``samples()``); None: no monitor or no sample."""
    if monitor is not None and hasattr(monitor, "latest"):
        return monitor.latest()
    rows = monitor.samples()[-1:] if monitor is not None else []
    return rows[0] if rows else None
