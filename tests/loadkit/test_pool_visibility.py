"""Pool visibility (`loadkit.verdicts.pool_visibility`): /health's pool figures are called
incomplete only with enough samples and a reason (figures that never moved under more users than the
pool holds, or
queueing while the reported pool never filled), and complete when they moved."""

from __future__ import annotations

from loadkit.verdicts import pool_visibility
from loadkit.verdicts.evidence import MIN_SAMPLES

FAST = {"response_time_p50_ms": 20.0, "response_time_p95_ms": 40.0}
QUEUED = {"response_time_p50_ms": 40.0, "response_time_p95_ms": 900.0}


def _series(checked_out: list[int | None]) -> list[dict]:
    return [{"t": i, "pool_checked_out": n} for i, n in enumerate(checked_out)]


def test_too_few_samples_make_no_claim() -> None:
    """Below MIN_SAMPLES pool samples the verdict is None and says how many there were."""
    series = _series([3] * (MIN_SAMPLES - 1) + [None, None])
    verdict = pool_visibility.judge({"size": 5}, series, FAST, users=50)
    assert verdict["complete"] is None and verdict["samples"] == MIN_SAMPLES - 1
    assert "too few samples" in verdict["reason"]


def test_an_unknown_pool_size_makes_no_claim() -> None:
    """No size in /health: nothing to compare the figures with."""
    verdict = pool_visibility.judge({}, _series([1, 2, 3, 4, 5]), FAST, users=50)
    assert verdict["complete"] is None and "size is unknown" in verdict["reason"]


def test_figures_that_never_moved_under_more_users_than_the_pool_are_incomplete() -> None:
    """checked_out flat at 0 while 50 requests ran at once against a pool of 20: incomplete."""
    verdict = pool_visibility.judge({"size": 20}, _series([0] * 8), FAST, users=50)
    assert verdict["complete"] is False and verdict["samples"] == 8
    assert "never moved" in verdict["reason"] and "50 requests" in verdict["reason"]


def test_flat_figures_with_fewer_users_than_the_pool_are_not_blamed() -> None:
    """A pool of 20 that stays at 1 under 4 users holds nothing suspicious."""
    verdict = pool_visibility.judge({"size": 20}, _series([1] * 8), FAST, users=4)
    assert verdict["complete"] is True


def test_queueing_while_the_pool_never_filled_is_incomplete() -> None:
    """p95 far above p50 (and over 100 ms) while the reported pool peaked below its size."""
    verdict = pool_visibility.judge({"size": 20}, _series([1, 3, 5, 4, 2, 6]), QUEUED, users=10)
    assert verdict["complete"] is False
    assert "queued" in verdict["reason"] and "peak 6 of 20" in verdict["reason"]


def test_queueing_with_a_full_pool_is_explained_by_the_pool() -> None:
    """The same queueing with the pool at its size: the figures describe the wait."""
    verdict = pool_visibility.judge({"size": 5}, _series([1, 3, 5, 5, 4, 5]), QUEUED, users=10)
    assert verdict["complete"] is True and "between 1 and 5" in verdict["reason"]
