"""measure.timeseries and the recorder's bounded memory: coarsening, merging, the interval."""

from __future__ import annotations

from loadkit.measure.recording import RunRecorder
from loadkit.measure.timeseries import TAIL_S, TimeSeries


def _fill(series: TimeSeries, seconds: int, per_second: int = 3) -> None:
    for sec in range(seconds):
        for i in range(per_second):
            item = series.at(sec)
            item.requests += 1
            item.hist.record(1000 * (1 + i))


def test_a_long_series_keeps_at_most_max_points_and_every_request() -> None:
    """Ten times more seconds than points: the interval doubles, points stay bounded, none lost."""
    series = TimeSeries(max_points=20)
    _fill(series, 200)
    assert series.points() <= 20 + TAIL_S
    assert series.interval_s == 16
    rows = series.rows(200)
    assert sum(r["requests"] for r in rows) == 600
    assert [r["t"] for r in rows[:3]] == [0, 16, 32]
    assert len(rows) == 13


def test_a_short_series_stays_per_second() -> None:
    """Under max_points seconds the series is per second, empty seconds included."""
    series = TimeSeries(max_points=100)
    _fill(series, 5)
    rows = series.rows(8)
    assert series.interval_s == 1
    assert [r["requests"] for r in rows] == [3, 3, 3, 3, 3, 0, 0, 0]


def test_merging_a_fine_series_into_a_coarse_one_keeps_counts() -> None:
    """A worker's per-second delta lands in the master's coarser buckets; the round trip holds."""
    coarse, fine = TimeSeries(max_points=10), TimeSeries(max_points=10)
    _fill(coarse, 100)
    _fill(fine, 30, per_second=1)
    coarse.merge(TimeSeries.from_dict(fine.to_dict()))
    rows = coarse.rows(100)
    assert sum(r["requests"] for r in rows) == 330
    assert rows[0]["requests"] == coarse.interval_s * 3 + coarse.interval_s


def test_the_report_states_the_interval() -> None:
    """The recorder's summary carries timeseries_interval_s with rows that far apart."""
    rec = RunRecorder(max_points=10)
    rec.start(1000.0)
    for sec in range(60):
        rec.record("GET /", 0.01, status=200, at=1000.0 + sec)
    s = rec.summary(duration_s=60)
    assert s["timeseries_interval_s"] == 8
    assert [r["t"] for r in s["timeseries"][:2]] == [0, 8]
    assert sum(r["requests"] for r in s["timeseries"]) == 60


def test_a_point_holds_a_bounded_number_of_keys_and_close_percentiles() -> None:
    """10,000 distinct latencies (1..10 ms) in one point: at most 32 keys per doubling (5 of them
    here), and its p95 within 1.6% of the exact value."""
    series = TimeSeries()
    item = series.at(0)
    values = [1000 + i * 0.9 for i in range(10_000)]  # 1,000 .. 10,000 us
    for v in values:
        item.hist.record(int(v))
    assert len(list(item.hist.buckets())) <= 32 * 5
    exact = sorted(values)[9499]
    assert abs(item.hist.percentile(95) - exact) / exact < 0.016
