"""The rate-limit prober's findings (no Locust import): the defects its answers prove, in the
pytest probe's form, and the split of a run's failures into its findings and the service's own."""

from __future__ import annotations

from loadkit.measure.recording import RunRecorder
from loadkit.verdicts import defects
from loadkit.verdicts.locust_verdict import PROBER_ENDPOINT, error_sources, thresholds
from loadkit.verdicts.prober_tally import ProberTally
from loadkit.verdicts.slo import Profile


def _tally(answers: list[tuple[int | None, bool]]) -> ProberTally:
    tally = ProberTally()
    for status, failed in answers:
        tally.record(status, failed=failed)
    return tally


def test_200s_beyond_the_limit_name_default_limit_missing_as_pytest_does() -> None:
    """150 answers of 200, the last 50 beyond the limit: the record is the pytest default-limit
    scenario's (same id, route, message and evidence), and it explains those 50 failures."""
    tally = _tally([(200, False)] * 100 + [(200, True)] * 50)
    found, explained = tally.findings()
    expected: list[dict] = []
    defects.from_limit(expected, "GET /api/sessions/", name="default", statuses={"200": 150},
                       refused=0, bare=0, total=150)  # fmt: skip
    assert found == expected and found[0]["id"] == "default-limit-missing"
    assert found[0]["evidence"] == {"requests": 150}
    assert explained == 50


def test_a_working_limit_or_a_short_run_names_nothing() -> None:
    """429s with Retry-After past the limit name no defect; a prober that never went past the
    limit proves nothing either way."""
    assert _tally([(200, False)] * 100 + [(429, False)] * 5).findings() == ([], 0)
    assert _tally([(200, False)] * 40).findings() == ([], 0)


def test_5xx_past_the_limit_and_bare_429s_are_their_own_defects() -> None:
    """A 500 where a 429 belongs is limiter-500; a 429 without Retry-After is retry-after-missing;
    a lost answer is not explained by either and stays the service's error."""
    found, explained = _tally([(200, False)] * 100 + [(500, True)] * 3 + [(None, True)]).findings()
    assert [d["id"] for d in found] == ["limiter-500"] and explained == 3
    found, explained = _tally([(200, False)] * 100 + [(429, True)] * 2).findings()
    assert [d["id"] for d in found] == ["retry-after-missing"] and explained == 2


def test_worker_tallies_merge_to_what_one_process_would_count() -> None:
    """Two workers' tallies, shipped as dicts and merged, find what one tally of all answers
    finds."""
    one = _tally([(200, False)] * 100 + [(200, True)] * 10)
    two = _tally([(200, True)] * 20)
    merged = ProberTally()
    for part in (one, two):
        merged.merge(ProberTally.from_dict(part.to_dict()))
    assert merged == _tally([(200, False)] * 100 + [(200, True)] * 30)
    assert merged.findings()[1] == 30


def test_error_rate_threshold_counts_the_services_errors_and_the_split_says_so() -> None:
    """732 prober findings and 3 service failures in 961 requests: the error-rate threshold
    judges 3/961, the split names both, and the report field stays every failure."""
    rec = RunRecorder()
    rec.start(0)
    for i in range(833):
        failed = i >= 101
        rec.record(PROBER_ENDPOINT, 0.02, status=200, error_kind="check" if failed else None, at=1)
    for i in range(128):
        failed = i < 3
        rec.record("POST /api/patients/", 0.01, status=422 if failed else 200,
                   error_kind="http_4xx" if failed else None, at=1)  # fmt: skip
    summary = rec.summary(duration_s=60)
    profile = Profile("t", {"locust": {"error_rate_percent": 1}}, {}, {})
    rows, _ = thresholds(profile, summary, None, 732)
    row = next(r for r in rows if r["metric"] == "error_rate_percent")
    assert row["actual"] == round(100 * 3 / 961, 4) and row["passed"]
    assert summary["error_rate_percent"] == round(100 * 735 / 961, 4)
    assert error_sources(summary, 732) == {
        "failures": 735,
        "prober_findings": 732,
        "service_errors": 3,
        "service_error_rate_percent": round(100 * 3 / 961, 4),
    }
    assert error_sources(summary, 5000)["prober_findings"] == 732  # at most the prober's failures
