"""The run's time series with bounded memory, however long the run lasts.

Requests land in per-second buckets (the *tail*, the last ``TAIL_S`` seconds, which the live view
reads); a second older than that is folded into the series proper, whose buckets are
``interval_s`` wide. When the series would hold more than ``max_points`` buckets, the interval
doubles and adjacent buckets merge, so memory stays flat: at most ``max_points`` histograms plus the
tail, each a `SeriesHistogram` (bounded keys). The report states the interval
(``parameters.timeseries_interval_s``): 1 s for runs shorter than ``max_points`` seconds, 2, 4, 8
... s for longer ones (a 1 h soak ends at 16 s points, a 2 h one at 32 s).
"""

from __future__ import annotations

import math

from loadkit.measure.histogram import LatencyHistogram, SeriesHistogram, us_to_ms

TAIL_S = 12
DEFAULT_MAX_POINTS = 250


class Latencies:
    """Request, failure and latency figures of one endpoint, or (``point``) of one point of the
    time series, whose histogram is a `SeriesHistogram`: bounded keys, 0.4%."""

    __slots__ = ("requests", "failures", "hist")

    def __init__(self, point: bool = False) -> None:
        self.requests = 0
        self.failures = 0
        self.hist = SeriesHistogram() if point else LatencyHistogram()

    def merge(self, other: Latencies) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.hist.merge(other.hist)

    def copy(self) -> Latencies:
        item = Latencies(isinstance(self.hist, SeriesHistogram))
        item.merge(self)
        return item

    def to_dict(self) -> dict:
        return {"requests": self.requests, "failures": self.failures, "hist": self.hist.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, point: bool = False) -> Latencies:
        item = cls(point)
        item.requests, item.failures = int(d["requests"]), int(d["failures"])
        item.hist = (SeriesHistogram if point else LatencyHistogram).from_dict(d["hist"])
        return item


class TimeSeries:
    """Per-interval latency buckets since t0; at most ``max_points`` of them (see the module)."""

    def __init__(self, *, max_points: int = DEFAULT_MAX_POINTS, interval_s: int = 1) -> None:
        if max_points < 2 or interval_s < 1:
            raise ValueError("a time series needs max_points >= 2 and interval_s >= 1")
        self.max_points = max_points
        self.interval_s = interval_s
        self.buckets: dict[int, Latencies] = {}  # bucket index -> figures (t = index * interval)
        self.tail: dict[int, Latencies] = {}  # second -> figures, the newest TAIL_S seconds
        self._newest = -1

    def at(self, second: int) -> Latencies:
        """The figures of one second (created, and older seconds folded, when it is new)."""
        item = self.tail.get(second)
        if item is None:
            item = self.tail[second] = Latencies(point=True)
            if second > self._newest:
                self._newest = second
                self._fold(second - TAIL_S)
        return item

    def second(self, second: int) -> Latencies | None:
        """One second of the tail (the live view), None when it is empty or already folded."""
        return self.tail.get(second)

    def _fold(self, before: int) -> None:
        for sec in [s for s in self.tail if s < before]:
            self._add(sec, self.tail.pop(sec))
        while len(self.buckets) > self.max_points:
            self._coarsen()

    def _add(self, second: int, item: Latencies) -> None:
        key = second // self.interval_s
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = item
        else:
            bucket.merge(item)

    def _coarsen(self) -> None:
        """Double the interval: adjacent buckets merge."""
        old, self.buckets = self.buckets, {}
        self.interval_s *= 2
        for key, item in old.items():
            self._add(key * (self.interval_s // 2), item)

    def shift(self, seconds: int) -> None:
        """Move every figure ``seconds`` later (an earlier t0); buckets to the nearest interval."""
        self.tail = {sec + seconds: item for sec, item in self.tail.items()}
        self._newest += seconds
        old, self.buckets = self.buckets, {}
        for key, item in old.items():
            self._add(key * self.interval_s + seconds, item)

    def merge(self, other: TimeSeries, shift: int = 0) -> None:
        """Add another series (``shift`` seconds later); the coarser interval wins."""
        while self.interval_s < other.interval_s:
            self._coarsen()
        for key, item in other.buckets.items():
            self._add(key * other.interval_s + shift, item.copy())
        for sec, item in other.tail.items():
            self.at(sec + shift).merge(item)
        self._fold(self._newest - TAIL_S)

    def points(self) -> int:
        """Histograms held now (the memory bound: max_points + TAIL_S)."""
        return len(self.buckets) + len(self.tail)

    def view(self) -> dict[int, Latencies]:
        """Buckets with the tail folded in, without changing the series."""
        out = {key: item.copy() for key, item in self.buckets.items()}
        for sec, item in self.tail.items():
            out.setdefault(sec // self.interval_s, Latencies(point=True)).merge(item)
        return out

    def rows(self, duration_s: float) -> list[dict]:
        """One row per interval from t0 to the run's end (empty ones included: a stall shows)."""
        view = self.view()
        last = max([*view, math.ceil(duration_s / self.interval_s) - 1, -1])
        rows = []
        for key in range(last + 1):
            item = view.get(key) or Latencies(point=True)
            p50, p95, p99 = item.hist.percentiles((50, 95, 99))
            rows.append(
                {
                    "t": key * self.interval_s,
                    "requests": item.requests,
                    "errors": item.failures,
                    "p50_ms": us_to_ms(p50),
                    "p95_ms": us_to_ms(p95),
                    "p99_ms": us_to_ms(p99),
                }
            )
        return rows

    def to_dict(self) -> dict:
        """JSON- and msgpack-safe state."""
        return {
            "max_points": self.max_points,
            "interval_s": self.interval_s,
            "buckets": [[k, item.to_dict()] for k, item in sorted(self.buckets.items())],
            "tail": [[s, item.to_dict()] for s, item in sorted(self.tail.items())],
        }

    @classmethod
    def from_dict(cls, d: dict | list) -> TimeSeries:
        """Rebuild a series written by `to_dict` (a plain list: per-second pairs)."""
        if isinstance(d, list):
            d = {"tail": d}
        series = cls(max_points=d.get("max_points", DEFAULT_MAX_POINTS))
        series.interval_s = int(d.get("interval_s", 1))
        series.buckets = {int(k): Latencies.from_dict(v, True) for k, v in d.get("buckets", [])}
        for sec, v in d.get("tail", []):
            series.at(int(sec)).merge(Latencies.from_dict(v, True))
        return series
