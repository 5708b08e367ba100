"""DefectProber's tally (no Locust import): the records of its answers are the pytest probes'
(same helpers, same ids and evidence), one per id and route with repeats counted, and the tallies
of several workers, shipped as dicts and merged, give what one process would; the failures they
explain leave the service's error rate whatever the ``probe ...`` route."""

from __future__ import annotations

from loadkit.contract import api
from loadkit.measure.recording import RunRecorder
from loadkit.probes import limit_probes, prober_findings, upload_probes
from loadkit.probes.probe_requests import ProbeRequest
from loadkit.verdicts import defects
from loadkit.verdicts.defect_tally import DefectTally
from loadkit.verdicts.locust_verdict import error_sources
from loadkit.verdicts.rate_limit import LimitProbe

PATIENT = api.endpoint("GET", api.PATIENT)
NO_TOKEN = ProbeRequest(f"GET {api.PATIENT} with no token", "GET", "/api/patients/1", PATIENT,
                        frozenset({401, 403}))  # fmt: skip


def _answers(tally: DefectTally, n: int) -> None:
    for _ in range(n):
        records, problems = prober_findings.access(NO_TOKEN, 200, b'{"id": "p1"}')
        tally.add_records(records, failed=len(records))


def test_an_answer_names_the_pytest_record_and_repeats_count() -> None:
    """A 200 without a token is data-without-token as `defects.from_access` names it; three of
    them are one record with count 3, explaining three failures; a refusal names nothing."""
    tally = DefectTally()
    _answers(tally, 3)
    expected: list[dict] = []
    for _ in range(3):
        defects.from_access(expected, NO_TOKEN.label, PATIENT, 200)
    assert tally.findings() == (expected, 3)
    assert tally.found[0]["evidence"] == {"status": 200, "count": 3}
    assert prober_findings.access(NO_TOKEN, 401, b"") == ([], [])


def test_worker_tallies_merge_to_what_one_process_would_find() -> None:
    """Two workers' tallies (records, explained failures, notes), shipped as dicts and merged,
    equal one tally of every answer; a note said by both is kept once."""
    one, two, alone, merged = DefectTally(), DefectTally(), DefectTally(), DefectTally()
    _answers(one, 2)
    _answers(two, 3)
    _answers(alone, 5)
    for tally in (one, two, alone):
        tally.say("the upload limit is spent")
    for part in (one, two):
        merged.merge(DefectTally.from_dict(part.to_dict()))
    assert merged == alone and merged.found[0]["evidence"]["count"] == 5


def test_limit_and_upload_answers_give_the_pytest_ids() -> None:
    """Wrong logins answered 500 past the login limit: limiter-500 with the 5xx statuses; an
    accepted non-audio upload: non-audio-accepted."""
    route = limit_probes.LIMITED_ROUTES["login"]
    seen = [LimitProbe(i * 0.1, 401 if i < 5 else 500) for i in range(7)]
    records, problems = prober_findings.login_limit(route, seen)
    assert [r["id"] for r in records] == ["limiter-500"] and problems
    assert records[0]["evidence"] == {"statuses": {"500": 2}}
    assert prober_findings.logins_to_limit([401, 401, 500]) == 3
    case = next(c for c in upload_probes.upload_cases(2048, valid=0) if "non-audio" in c.label)
    records, _ = prober_findings.upload(case, 200, b'{"id": "s1"}')
    assert [r["id"] for r in records] == ["non-audio-accepted"]


def test_explained_failures_of_any_probe_route_leave_the_service_errors() -> None:
    """Failures of ``probe GET /api/patients/{id}`` explained by a named defect are prober
    findings; a persona's own failure stays a service error."""
    rec = RunRecorder()
    rec.start(0)
    for _ in range(4):
        rec.record(f"probe {PATIENT}", 0.01, status=200, error_kind="check", at=1)
    rec.record("GET /api/sessions/", 0.01, status=500, error_kind="http_5xx", at=1)
    split = error_sources(rec.summary(duration_s=10), 4)
    assert split["prober_findings"] == 4 and split["service_errors"] == 1
