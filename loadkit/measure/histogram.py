"""The latency histogram and the one nearest-rank percentile rule.

`LatencyHistogram` is HDR-style: integer microseconds, 3 significant digits, exact count, min, max
and sum; its percentiles are nearest-rank and clamped to [min, max]. `nearest_rank` applies the same
rank to a plain list of values (the trace's thirds, the canary, sub-second charts).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from itertools import compress

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


def _octave(length: int, bits: int) -> array:
    """The zeroed counts of the octave of values with ``length`` bits."""
    size = 1 << (bits - 1) if length > bits else (1 << (length - 1) if length else 1)
    return array("q", bytes(8 * size))


def _key(length: int, index: int, bits: int) -> int:
    """The bucket key (its lowest value) at ``index`` of the octave of ``length``-bit values."""
    if length > bits:
        return (index + (1 << (bits - 1))) << (length - bits)
    return index + (1 << (length - 1)) if length else 0


class LatencyHistogram:
    """Mergeable latency histogram: integer microseconds, 3 significant digits, exact extremes.

    Counts are kept in one array per octave (the values of one bit length), allocated when the
    octave sees its first value; an octave has at most ``2 ** (BITS - 1)`` buckets. Memory is set
    by the range of latencies seen, not by how many were counted, so it stops growing within the
    first minutes of a run of any length (a dict of bucket keys kept growing for hours as rare
    latencies filled in, issue 17)."""

    __slots__ = ("_octaves", "count", "sum_us", "_min", "_max")
    BITS = _SUB_BUCKET_BITS  # significant bits of a bucket key

    def __init__(self) -> None:
        self._octaves: dict[int, array] = {}  # bit length -> counts of its buckets
        self.count = 0
        self.sum_us = 0
        self._min = 0
        self._max = 0

    def record(self, value_us: int) -> None:
        """Add one value (microseconds; negative values count as 0)."""
        v = value_us if value_us > 0 else 0
        self._add(v, 1)
        if self.count:
            if v < self._min:
                self._min = v
            elif v > self._max:
                self._max = v
        else:
            self._min = self._max = v
        self.count += 1
        self.sum_us += v

    def _add(self, key: int, n: int) -> None:
        """Add ``n`` values at bucket key ``key`` (a key of any precision lands in its bucket)."""
        bits, length = self.BITS, key.bit_length()
        if length > bits:
            index = (key >> (length - bits)) - (1 << (bits - 1))
        else:
            index = key - (1 << (length - 1)) if length else 0
        counts = self._octaves.get(length)
        if counts is None:
            counts = self._octaves[length] = _octave(length, bits)
        counts[index] += n

    def buckets(self) -> Iterator[tuple[int, int]]:
        """(bucket key, count) of every non-empty bucket, in ascending order of key."""
        for length in sorted(self._octaves):
            counts = self._octaves[length]
            for index in compress(range(len(counts)), counts):
                yield _key(length, index, self.BITS), counts[index]

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value of ``other`` to this histogram."""
        if not other.count:
            return
        if other.BITS == self.BITS:
            for length, theirs in other._octaves.items():
                mine = self._octaves.get(length)
                if mine is None:
                    self._octaves[length] = array("q", theirs)
                    continue
                for index in compress(range(len(theirs)), theirs):
                    mine[index] += theirs[index]
        else:
            for key, n in other.buckets():
                self._add(key, n)
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
        seen, j = 0, 0
        for length in sorted(self._octaves):
            counts = self._octaves[length]
            total = sum(counts)
            if seen + total < ranks[j][0]:  # no rank falls in this octave
                seen += total
                continue
            for index in compress(range(len(counts)), counts):
                seen += counts[index]
                while j < len(ranks) and ranks[j][0] <= seen:
                    out[ranks[j][1]] = self._value(_key(length, index, self.BITS), ps[ranks[j][1]])
                    j += 1
                if j == len(ranks):
                    return out
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
            "buckets": [[k, n] for k, n in self.buckets()],
        }

    @classmethod
    def from_dict(cls, d: dict) -> LatencyHistogram:
        """Rebuild a histogram written by `to_dict`."""
        h = cls()
        for key, n in d.get("buckets", []):
            h._add(int(key), int(n))
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
