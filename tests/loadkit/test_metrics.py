"""loadkit.measure.recording: histogram percentiles, error classification, the run recorder."""

from __future__ import annotations

import json
import math
import random
import tracemalloc

import msgpack
import pytest

from loadkit.measure.histogram import LatencyHistogram, SeriesHistogram, nearest_rank
from loadkit.measure.recording import ERROR_KINDS, RunRecorder
from loadkit.measure.send import classify

PERCENTILES = (0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100)


def exact_nearest_rank(sorted_values: list[int], p: float) -> int:
    """Textbook nearest-rank percentile of sorted data."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def heavy_tailed(n: int, seed: int) -> list[int]:
    """Latencies in microseconds: lognormal body with a Pareto tail, 1 us to minutes."""
    rng = random.Random(seed)
    body = [int(rng.lognormvariate(9, 1.2)) for _ in range(n - n // 20)]
    tail = [int(2000 * rng.paretovariate(1.1)) for _ in range(n // 20)]
    return body + tail


def histogram_of(values: list[int]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    return hist


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_exact_nearest_rank_within_a_tenth_of_a_percent(seed: int) -> None:
    """Every percentile of heavy-tailed data is within 0.1% of the exact nearest-rank value."""
    values = heavy_tailed(20_000, seed)
    hist = histogram_of(values)
    ordered = sorted(values)
    for p in PERCENTILES:
        exact = exact_nearest_rank(ordered, p)
        assert abs(hist.percentile(p) - exact) <= 0.001 * exact, (p, exact, hist.percentile(p))


def test_extremes_count_and_mean_are_exact() -> None:
    """p100 is the exact max, p99 never above it, and count/min/max/mean are exact."""
    values = heavy_tailed(5_000, 7)
    hist = histogram_of(values)
    assert hist.percentile(100) == max(values) == hist.max_us
    assert hist.percentile(99) <= hist.max_us
    assert hist.min_us == min(values)
    assert hist.count == len(values)
    assert hist.mean_us == pytest.approx(sum(values) / len(values))


def test_small_values_are_exact_and_single_value_is_every_percentile() -> None:
    """Values under 2,048 us are stored exactly; one value is every percentile."""
    hist = histogram_of([1234])
    assert hist.percentiles((0, 50, 99, 100)) == [1234.0] * 4
    hist = histogram_of(list(range(1, 101)))
    assert hist.percentile(50) == 50 and hist.percentile(95) == 95 and hist.percentile(99) == 99


def test_empty_histogram_has_no_figures() -> None:
    """An empty histogram reports unknown (None/NaN), never 0."""
    hist = LatencyHistogram()
    assert hist.count == 0 and hist.min_us is None and hist.max_us is None and hist.mean_us is None
    assert math.isnan(hist.percentile(99))
    with pytest.raises(ValueError):
        hist.percentile(101)


def test_histogram_merge_and_round_trip_keep_every_figure() -> None:
    """Merged halves equal the whole; to_dict survives JSON and msgpack unchanged."""
    values = heavy_tailed(4_000, 11)
    left, right = histogram_of(values[:1500]), histogram_of(values[1500:])
    left.merge(right)
    whole = histogram_of(values)
    for encoded in (
        json.loads(json.dumps(left.to_dict())),
        msgpack.unpackb(msgpack.packb(left.to_dict())),
    ):
        back = LatencyHistogram.from_dict(encoded)
        assert back.to_dict() == whole.to_dict()
        assert back.percentiles(PERCENTILES) == whole.percentiles(PERCENTILES)


def test_histogram_memory_stops_growing_however_many_values_it_counts() -> None:
    """After the first 5,000 heavy-tailed values, 45,000 more allocate next to nothing: memory is
    set by the range of latencies, not by the count (a soak's histograms stay flat; a dict of
    bucket keys grew 251 kB over the same values)."""
    values = heavy_tailed(50_000, 5)
    hist = LatencyHistogram()
    tracemalloc.start()
    try:
        for v in values[:5_000]:
            hist.record(v)
        early = tracemalloc.get_traced_memory()[0]
        for v in values[5_000:]:
            hist.record(v)
        late = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert late - early < 32 * 1024, (early, late)  # an octave or two reached late, no more
    assert hist.count == len(values)


def test_merging_a_coarser_histogram_lands_each_bucket_in_its_own() -> None:
    """A time-series point (6 significant bits) merged into a full histogram keeps its count and
    extremes, and its percentiles stay within the point's 1.6%."""
    values = heavy_tailed(5_000, 13)
    point = SeriesHistogram()
    for v in values:
        point.record(v)
    whole = LatencyHistogram()
    whole.merge(point)
    assert (whole.count, whole.min_us, whole.max_us) == (len(values), min(values), max(values))
    ordered = sorted(values)
    for p in (50, 95, 99):
        exact = exact_nearest_rank(ordered, p)
        assert abs(whole.percentile(p) - exact) <= 0.016 * exact, (p, exact)


@pytest.mark.parametrize(
    ("status", "expected", "kind"),
    [
        (200, 200, None),
        (201, (200, 201), None),
        (422, 200, "http_4xx"),
        (429, 200, "http_4xx"),
        (429, {429}, None),
        (503, 200, "http_5xx"),
        (200, 201, "check"),
        (307, 200, "check"),
        (None, 200, "connection"),
    ],
)
def test_classify_counts_any_unexpected_status_as_an_error(
    status: int | None, expected: int | tuple[int, ...], kind: str | None
) -> None:
    """A 422 where 200 is expected is an error; no response is a connection error."""
    assert classify(status, expected) == kind


def recorder_with(events: list[tuple], *, t0: float = 1000.0, warmup_s: float = 0.0) -> RunRecorder:
    rec = RunRecorder(warmup_s=warmup_s, error_sample_limit=5)
    rec.start(t0)
    for endpoint, latency, status, kind, at in events:
        rec.record(endpoint, latency, status=status, error_kind=kind, message="boom", at=at)
    return rec


def random_events(n: int, seed: int, t0: float = 1000.0) -> list[tuple]:
    rng = random.Random(seed)
    events = []
    for _ in range(n):
        status = rng.choice([200, 200, 200, 200, 404, 500, None])
        kind = classify(status, 200)
        latency = None if status is None else rng.lognormvariate(-4, 1)
        endpoint = rng.choice(["GET /health", "GET /api/sessions/{id}"])
        events.append((endpoint, latency, status, kind, t0 + rng.uniform(0, 10)))
    return events


def test_summary_counts_errors_and_keeps_failed_connections_out_of_latency() -> None:
    """Error kinds, status codes and rates add up; connection errors carry no latency."""
    events = [
        ("GET /health", 0.010, 200, None, 1000.1),
        ("GET /health", 0.030, 422, classify(422, 200), 1000.2),
        ("GET /health", None, None, "connection", 1000.3),
        ("GET /health", None, None, "timeout", 1001.5),
    ]
    s = recorder_with(events).summary(duration_s=2.0)
    assert s["total_requests"] == 4
    assert s["error_rate_percent"] == 75.0 and s["success_rate_percent"] == 25.0
    assert s["requests_per_second"] == 2.0
    assert s["status_codes"] == {"200": 1, "422": 1}
    assert s["errors_by_kind"] == {
        "http_4xx": 1, "http_5xx": 0, "connection": 1, "timeout": 1, "check": 0
    }  # fmt: skip
    assert s["response_time_max_ms"] == 30.0 and s["response_time_min_ms"] == 10.0
    assert s["response_time_avg_ms"] == 20.0
    assert s["endpoints"]["GET /health"]["failures"] == 3
    assert [e["kind"] for e in s["errors"]] == ["http_4xx", "connection", "timeout"]
    assert s["errors"][0]["time"].startswith("1970-01-01T00:16:40.2")
    assert [(r["t"], r["requests"], r["errors"]) for r in s["timeseries"]] == [(0, 3, 2), (1, 1, 1)]


def test_warmup_requests_only_reach_the_time_series() -> None:
    """Requests meant to start inside the warm-up are left out of every steady-state figure."""
    events = [
        ("GET /health", 5.0, 500, "http_5xx", 1000.5),  # warm-up: slow and failing
        ("GET /health", 0.002, 200, None, 1002.5),
        ("GET /health", 0.004, 200, None, 1003.5),
    ]
    s = recorder_with(events, warmup_s=2.0).summary(duration_s=4.0)
    assert s["total_requests"] == 2 and s["error_rate_percent"] == 0.0
    assert s["response_time_max_ms"] == 4.0 and s["status_codes"] == {"200": 2}
    assert s["errors"] == [] and sum(s["errors_by_kind"].values()) == 0
    assert s["requests_per_second"] == 1.0  # 2 requests over the 2 steady-state seconds
    assert s["timeseries"][0]["requests"] == 1 and s["timeseries"][0]["errors"] == 1
    assert s["timeseries"][0]["p99_ms"] == pytest.approx(5000, rel=1e-3)


def test_empty_run_reports_unknown_figures_not_zeros() -> None:
    """With no request, latency and rates are None; every error kind is present."""
    rec = RunRecorder()
    rec.start(1000.0)
    s = rec.summary(duration_s=3.0)
    assert s["total_requests"] == 0 and s["response_time_p95_ms"] is None
    assert s["error_rate_percent"] is None and s["success_rate_percent"] is None
    assert tuple(s["errors_by_kind"]) == ERROR_KINDS
    assert [r["t"] for r in s["timeseries"]] == [0, 1, 2]


def test_merge_equals_one_recorder_fed_everything() -> None:
    """Workers' recorders merged (via JSON and msgpack, as Locust sends them) equal a single one."""
    first, second = random_events(3000, 1), random_events(3000, 2, t0=1003.0)
    single = recorder_with(first + second)
    a = recorder_with(first)
    b = recorder_with(second, t0=1003.0)
    merged = RunRecorder.from_dict(json.loads(json.dumps(a.to_dict())))
    merged.merge(RunRecorder.from_dict(msgpack.unpackb(msgpack.packb(b.to_dict()))))
    got, want = merged.summary(duration_s=13), single.summary(duration_s=13)
    got.pop("errors"), want.pop("errors")
    assert got == want


def test_merge_aligns_an_earlier_worker_on_wall_time() -> None:
    """A worker that started earlier shifts the merged series: t counts from the first t0."""
    late = recorder_with([("GET /", 0.001, 200, None, 1005.2)], t0=1005.0)
    early = recorder_with([("GET /", 0.001, 200, None, 1000.2)], t0=1000.0)
    late.merge(early)
    rows = late.summary(duration_s=6)["timeseries"]
    assert late.t0 == 1000.0 and [r["requests"] for r in rows] == [1, 0, 0, 0, 0, 1]


def test_round_trip_keeps_the_whole_summary_and_late_starts() -> None:
    """to_dict/from_dict keeps every figure, the error samples and the late-start count."""
    rec = recorder_with(random_events(500, 3), warmup_s=1.0)
    rec.record_late_start(3)
    back = RunRecorder.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.summary(duration_s=11) == rec.summary(duration_s=11)
    assert back.summary(duration_s=11)["late_starts"] == 3


def test_error_samples_are_capped_at_the_limit() -> None:
    """Only the first N distinct errors are kept as samples; all are counted."""
    events = [(f"GET /x{i}", 0.001, 500, "http_5xx", 1000 + i / 100) for i in range(50)]
    s = recorder_with(events).summary(duration_s=1)
    assert len(s["errors"]) == 5 and s["errors_by_kind"]["http_5xx"] == 50
    assert [e["endpoint"] for e in s["errors"]] == [f"GET /x{i}" for i in range(5)]


def test_errors_are_grouped_by_endpoint_kind_status_and_message_with_a_count() -> None:
    """Alike errors are one entry with a count and the first time seen, also across a merge."""
    events = [("GET /a", 0.001, 500, "http_5xx", 1000 + i) for i in range(30)]
    events += [("GET /a", 0.001, 404, "http_4xx", 1000.5), ("GET /b", 0.001, 500, "http_5xx", 1001)]
    one = recorder_with(events[:20])
    one.merge(RunRecorder.from_dict(recorder_with(events[20:]).to_dict()))
    groups = {(e["endpoint"], e["status"]): e for e in one.summary(duration_s=40)["errors"]}
    assert set(groups) == {("GET /a", 500), ("GET /a", 404), ("GET /b", 500)}
    assert [groups[k]["count"] for k in sorted(groups)] == [1, 30, 1]
    assert groups[("GET /a", 500)]["time"].startswith("1970-01-01T00:16:40.000")
    assert sum(g["count"] for g in groups.values()) == one.failures == 32


def test_errors_alike_but_for_their_request_ids_are_one_group() -> None:
    """Two 500 bodies that differ only in their request_id (a UUID) are one group of count 2;
    the id reads as <id>."""
    rec = RunRecorder()
    rec.start(0.0)
    for rid in ("99a8ec89-44c7-40ab-bb91-781b3a1bc2f8", "e641c4fd-5730-4ba1-a480-a08173113e5d"):
        body = f'500 {{"error":{{"message":"no key","request_id":"{rid}"}}}}'
        rec.record("POST /x", 0.001, status=500, error_kind="http_5xx", message=body, at=1.0)
    [group] = rec.summary(duration_s=1)["errors"]
    assert group["count"] == 2 and '"request_id":"<id>"' in group["message"], group


def test_each_persona_has_its_own_figures_merged_across_processes() -> None:
    """Requests recorded with a persona give that persona's requests, failures, percentiles and
    requests/s (steady state only); workers' figures add up in a merge."""
    a, b = RunRecorder(warmup_s=1.0), RunRecorder(warmup_s=1.0)
    for rec in (a, b):
        rec.start(1000.0)
        rec.record("GET /x", 0.5, status=200, at=1000.2, persona="Early")  # warm-up: left out
        for i in range(10):
            rec.record("GET /x", 0.010 * (i + 1), status=200, at=1001 + i, persona="Reader")
        rec.record("GET /x", None, error_kind="timeout", at=1005, persona="Prober")
        rec.record("GET /x", 0.001, status=200, at=1005)  # no persona: in the totals only
    a.merge(RunRecorder.from_dict(b.to_dict()))
    personas = a.summary(duration_s=11)["personas"]
    assert sorted(personas) == ["Prober", "Reader"]
    reader = personas["Reader"]
    assert reader["requests"] == 20 and reader["failures"] == 0
    assert reader["response_time_p50_ms"] == pytest.approx(50, rel=0.01)
    assert reader["response_time_p99_ms"] == pytest.approx(100, rel=0.01)
    assert reader["requests_per_second"] == 2.0
    prober = personas["Prober"]
    assert prober["failures"] == 2 and prober["response_time_p95_ms"] is None


def test_record_is_cheap_enough_for_ten_thousand_requests_a_second() -> None:
    """record() costs well under the 100 us a 10,000/s generator can spend per request in total."""
    from loadkit.measure.recording import measure_record_cost

    cost = measure_record_cost(calls=20_000)
    assert cost["success_us"] < 20 and cost["http_4xx_us"] < 20, cost


def test_unknown_error_kind_is_refused() -> None:
    """A misspelt error kind fails loudly instead of vanishing from errors_by_kind."""
    rec = RunRecorder()
    with pytest.raises(ValueError, match="unknown error kind"):
        rec.record("GET /x", 0.001, status=500, error_kind="http_500")


@pytest.mark.parametrize("p", [1, 10, 50, 90, 95, 99, 100])
def test_histogram_and_list_percentiles_share_one_rank_rule(p: float) -> None:
    """Exact small values: the histogram's percentile equals nearest_rank over the same list."""
    values = [(i * 37) % 1000 + 1 for i in range(250)]
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    assert hist.percentile(p) == nearest_rank(values, p)


def test_a_repeated_error_is_counted_in_its_group_and_stays_redacted() -> None:
    """The same error again costs a lookup, not a redaction: its group counts it, and the group's
    message is still the redacted one; two messages redacted alike share a group."""
    rec = RunRecorder(error_sample_limit=2)
    rec.start(0)
    for token in ("eyJa.eyJb.sig1", "eyJa.eyJb.sig1", "eyJc.eyJd.sig2"):
        rec.record("GET /x", None, error_kind="connection", message=f"Bearer {token} refused", at=1)
    rec.record("GET /y", None, error_kind="timeout", message="slow", at=2)
    rec.record("GET /z", None, error_kind="timeout", message="no room", at=3)
    rec.record("GET /z", None, error_kind="timeout", message="no room", at=4)
    groups = rec.summary(duration_s=5)["errors"]
    assert [(g["endpoint"], g["count"]) for g in groups] == [("GET /x", 3), ("GET /y", 1)]
    assert "eyJ" not in groups[0]["message"] and "refused" in groups[0]["message"]
    assert rec.errors_by_kind == {**dict.fromkeys(ERROR_KINDS, 0), "connection": 3, "timeout": 3}
