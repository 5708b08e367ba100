"""The rate-limit verdict: window counting, fixed-window tolerance, and each defect it must name."""

from loadkit.verdicts.ratelimit_verdict import LimitProbe, boundary_crossed, judge, max_in_window


def _probes(statuses: list[int | None], *, step: float = 0.01, retry_after: str | None = "30"):
    return [
        LimitProbe(1000.0 + i * step, s, retry_after if s == 429 else None)
        for i, s in enumerate(statuses)
    ]


def _failed(thresholds: list[dict]) -> set[str]:
    return {t["metric"] for t in thresholds if not t["passed"]}


def test_max_in_window_counts_the_busiest_window():
    """The busiest half-open window is found wherever it lies."""
    assert max_in_window([0, 1, 2, 60, 61], 60) == 3
    assert max_in_window([0, 59.9, 60, 60.5, 119], 60) == 4
    assert max_in_window([], 60) == 0


def test_an_exact_limit_passes():
    """100 allowed then 50 proper 429s is the contract."""
    thresholds, problems = judge(_probes([200] * 100 + [429] * 50), limit=100, window_s=60)
    assert not _failed(thresholds) and problems == []


def test_one_too_many_allowed_fails():
    """101 allowed within one window fails, naming the count and the limit."""
    thresholds, problems = judge(_probes([200] * 101 + [429] * 49), limit=100, window_s=60)
    assert _failed(thresholds) == {"allowed_in_any_window_max"}
    assert "101 requests allowed within one window, limit 100" in problems[0]


def test_a_fixed_window_rollover_is_tolerated_only_with_evidence():
    """Up to 2x the limit passes when a refusal was followed by an allowance (a boundary)."""
    rolled = _probes([200] * 60 + [429] * 5 + [200] * 80 + [429] * 5)
    assert not _failed(judge(rolled, limit=100, window_s=60)[0])
    unproven = _probes([200] * 140 + [429] * 10)
    assert boundary_crossed(rolled) and not boundary_crossed(unproven)
    assert "allowed_in_any_window_max" in _failed(judge(unproven, limit=100, window_s=60)[0])


def test_a_500_instead_of_429_fails_naming_it():
    """A limiter answering 500 fails: no 429 at all, and the 500s are named."""
    thresholds, problems = judge(_probes([200] * 100 + [500] * 50), limit=100, window_s=60)
    assert _failed(thresholds) == {"refused_429_min", "unexpected_responses_max"}
    assert "responses other than 2xx or 429 came back: 500 x50" in problems


def test_retry_after_must_be_an_integer():
    """A 429 with no Retry-After, or a date instead of seconds, fails."""
    for value in (None, "Wed, 21 Oct 2015 07:28:00 GMT", "1.5"):
        thresholds, _ = judge(_probes([200] * 10 + [429], retry_after=value), limit=10, window_s=60)
        assert _failed(thresholds) == {"refusals_without_retry_after_max"}


def test_nothing_refused_fails_and_lost_requests_are_named():
    """A limit never enforced fails; a request with no response counts as unexpected."""
    thresholds, problems = judge(_probes([200] * 5 + [None]), limit=10, window_s=60)
    assert _failed(thresholds) == {"refused_429_min", "unexpected_responses_max"}
    assert "responses other than 2xx or 429 came back: no response x1" in problems
