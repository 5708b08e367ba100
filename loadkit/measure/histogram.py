"""The latency histogram and the one nearest-rank percentile rule.

`LatencyHistogram` is HDR-style: integer microseconds, 3 significant digits, exact count, min, max
and sum; its percentiles are nearest-rank and clamped to [min, max]. `nearest_rank` applies the same
rank to a plain list of values (the trace's thirds, the canary, sub-second charts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_SUB_BUCKET_BITS = 11  # 2,048 sub-buckets: 3 significant digits


def rank(p: float, count: int) -> int:
    """The 1-based nearest rank of percentile ``p`` among ``count`` ordered values."""
    return max(1, math.ceil(p / 100 * count))


def nearest_rank(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[rank(p, len(ordered)) - 1]


def _bucket_range(key: int, bits: int = _SUB_BUCKET_BITS) -> tuple[int, int]:
    """Lowest and highest value that share a bucket key (``bits`` significant bits kept)."""
    if key < 1 << bits:
        return key, key
    width = 1 << (key.bit_length() - bits)
    return key, key + width - 1


class LatencyHistogram:
    """Mergeable latency histogram: integer microseconds, 3 significant digits, exact extremes."""

    __slots__ = ("_counts", "count", "sum_us", "_min", "_max")
    BITS = _SUB_BUCKET_BITS  # significant bits of a bucket key

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.sum_us = 0
        self._min = 0
        self._max = 0

    def record(self, value_us: int) -> None:
        """Add one value (microseconds; negative values count as 0)."""
        v = value_us if value_us > 0 else 0
        bits = self.BITS
        if v >> bits:
            shift = v.bit_length() - bits
            key = v >> shift << shift
        else:
            key = v
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        if self.count:
            if v < self._min:
                self._min = v
            elif v > self._max:
                self._max = v
        else:
            self._min = self._max = v
        self.count += 1
        self.sum_us += v

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value of ``other`` to this histogram."""
        if not other.count:
            return
        counts = self._counts
        for key, n in other._counts.items():
            counts[key] = counts.get(key, 0) + n
        if self.count:
            self._min = min(self._min, other._min)
            self._max = max(self._max, other._max)
        else:
            self._min, self._max = other._min, other._max
        self.count += other.count
        self.sum_us += other.sum_us

    @property
    def min_us(self) -> int | None:
        return self._min if self.count else None

    @property
    def max_us(self) -> int | None:
        return self._max if self.count else None

    @property
    def mean_us(self) -> float | None:
        return self.sum_us / self.count if self.count else None

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile in microseconds (NaN when empty); p=100 is the exact max."""
        return self.percentiles((p,))[0]

    def percentiles(self, ps: Iterable[float]) -> list[float]:
        """Several nearest-rank percentiles in one pass over the sorted buckets."""
        ps = list(ps)
        for p in ps:
            if not 0 <= p <= 100:
                raise ValueError(f"percentile must be within 0..100, got {p}")
        if not self.count:
            return [math.nan] * len(ps)
        ranks = sorted((rank(p, self.count), i) for i, p in enumerate(ps))
        out = [float(self._max)] * len(ps)
        keys, seen, j = sorted(self._counts), 0, 0
        for key in keys:
            seen += self._counts[key]
            while j < len(ranks) and ranks[j][0] <= seen:
                out[ranks[j][1]] = self._value(key, ps[ranks[j][1]])
                j += 1
            if j == len(ranks):
                break
        return out

    def _value(self, key: int, p: float) -> float:
        """The bucket's midpoint clamped to the exact [min, max]; p=100 is the exact max."""
        if p >= 100:
            return float(self._max)
        low, high = _bucket_range(key, self.BITS)
        return float(min(max((low + high) / 2, self._min), self._max))

    def to_dict(self) -> dict:
        """JSON- and msgpack-safe form: only ints and lists."""
        return {
            "count": self.count,
            "sum_us": self.sum_us,
            "min_us": self.min_us,
            "max_us": self.max_us,
            "buckets": [[k, n] for k, n in sorted(self._counts.items())],
        }

    @classmethod
    def from_dict(cls, d: dict) -> LatencyHistogram:
        """Rebuild a histogram written by `to_dict`."""
        h = cls()
        h._counts = {int(k): int(n) for k, n in d.get("buckets", [])}
        h.count = int(d.get("count", 0))
        h.sum_us = int(d.get("sum_us", 0))
        h._min = int(d["min_us"]) if h.count else 0
        h._max = int(d["max_us"]) if h.count else 0
        return h


class SeriesHistogram(LatencyHistogram):
    """A time-series point's histogram: 6 significant bits (a percentile within 1.6% of the value),
    so a point holds at most 32 keys per doubling of latency however many requests it counts, and
    a long run's series stays small (simulated: 250 points at 15 requests/s level off near 4 MB
    over 4 hours; 3 significant digits grew 4 MB an hour). Exact count, min, max and sum."""

    __slots__ = ()
    BITS = 6


def us_to_ms(value_us: float | None) -> float | None:
    """Microseconds to milliseconds, rounded to the microsecond; None (unknown) stays None."""
    if value_us is None or math.isnan(value_us):
        return None
    return round(value_us / 1000, 3)


def latency_fields(hist: LatencyHistogram) -> dict:
    """The report's response_time_* fields (ms) of a histogram; None when it holds no value."""
    p50, p95, p99 = hist.percentiles((50, 95, 99))
    return {
        "response_time_avg_ms": us_to_ms(hist.mean_us),
        "response_time_min_ms": us_to_ms(hist.min_us),
        "response_time_max_ms": us_to_ms(hist.max_us),
        "response_time_p50_ms": us_to_ms(p50),
        "response_time_p95_ms": us_to_ms(p95),
        "response_time_p99_ms": us_to_ms(p99),
    }
