"""The tracing recorder (`loadkit.measure.trace`): it keeps each request up to its bound while the
report's counts still cover all of them; nearest-rank percentiles; the first and last third of a run
by
intended start."""

from __future__ import annotations

import pytest

from loadkit.measure.histogram import nearest_rank
from loadkit.measure.trace import TracingRecorder, thirds_p95_ms

EP = "GET /api/sessions/"


def test_trace_is_bounded_but_the_counts_cover_every_request() -> None:
    """Past max_samples no Sample is kept, yet the summary counts every request and error."""
    rec = TracingRecorder(max_samples=5)
    rec.start(1_000.0)
    for i in range(8):
        rec.record(EP, 0.01, status=200, at=1_000.0 + i)
    rec.record(EP, None, error_kind="timeout", message="slow", at=1_009.0)
    assert len(rec.samples) == 5
    assert [s.at for s in rec.samples] == [1_000.0 + i for i in range(5)]
    summary = rec.summary(duration_s=10.0)
    assert summary["total_requests"] == 9 and summary["errors_by_kind"]["timeout"] == 1


def test_a_sample_keeps_what_came_back() -> None:
    """A failed request is kept with its kind and message, and no latency."""
    rec = TracingRecorder()
    rec.record(EP, None, error_kind="connection", message="reset", at=5.0)
    (sample,) = rec.samples
    assert (sample.at, sample.latency_s, sample.error_kind, sample.message) == (
        5.0,
        None,
        "connection",
        "reset",
    )


@pytest.mark.parametrize(
    ("p", "expected"), [(10, 1), (50, 5), (90, 9), (95, 10), (99, 10), (100, 10)]
)
def test_nearest_rank_of_one_to_ten(p: float, expected: float) -> None:
    """The nearest rank is ceil(p/100 x n), never interpolated, order of input irrelevant."""
    assert nearest_rank([7, 3, 10, 1, 5, 2, 9, 4, 8, 6], p) == expected


def test_nearest_rank_of_nothing_is_none() -> None:
    """No values: no percentile (not zero)."""
    assert nearest_rank([], 95) is None


def test_thirds_compare_the_start_with_the_end_by_intended_start() -> None:
    """Recorded out of order, unanswered requests left out: early p95 fast, late p95 slow."""
    rec = TracingRecorder()
    for i in reversed(range(30)):
        latency = 0.010 if i < 10 else 0.020 if i < 20 else 0.100
        rec.record(EP, latency, status=200, at=float(i))
    rec.record(EP, None, error_kind="timeout", at=29.5)
    early, late = thirds_p95_ms(rec.samples)
    assert early == pytest.approx(10.0) and late == pytest.approx(100.0)


def test_thirds_of_too_few_requests_are_none() -> None:
    """Fewer than three answered requests have no thirds."""
    rec = TracingRecorder()
    rec.record(EP, 0.01, status=200, at=0.0)
    rec.record(EP, 0.01, status=200, at=1.0)
    assert thirds_p95_ms(rec.samples) == (None, None)
