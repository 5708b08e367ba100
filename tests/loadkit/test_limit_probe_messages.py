"""The rate-limit prober's failure text is stable: a run of over-limit answers is one message, so
Locust's failure table and CSV group them in one row with a count."""

from loadkit.verdicts.limit_probe import ProbeJudge


def test_over_limit_failures_share_one_message() -> None:
    """Ten 200s past a limit of 2 give ten failures with one text, naming the limit."""
    judge = ProbeJudge(limit=2, window_s=60)
    failures = [judge.judge(t, 200, None).failure for t in range(12)]
    over = [f for f in failures if f]
    assert len(over) == 10
    assert set(over) == {"HTTP 200 beyond the limit: more than 2 allowed within 60 s"}
