"""The defect records of one answer (or one limit run) of Locust's DefectProber, through the same
`verdicts.defects` helpers the pytest probe scenarios call, so both faces name a finding alike
(pure, no Locust import).

Each function gives ``(records, problems)``: the records to add to the prober's
`verdicts.defect_tally.DefectTally`, and the failure messages of the answer (a problem with no
record is a wrong answer no defect id names: it stays the service's error).
"""

from __future__ import annotations

from loadkit.probes import access_probes, limit_probes, upload_probes
from loadkit.probes.probe_requests import ProbeRequest
from loadkit.probes.upload_probes import UploadCase
from loadkit.verdicts import defects
from loadkit.verdicts.rate_limit import LimitProbe


def access(p: ProbeRequest, status: int | None, body: bytes) -> tuple[list[dict], list[str]]:
    """An access-control answer: ``data-without-token``, ``foreign-*-readable``, ... when a
    credential the contract refuses was answered 2xx (`defects.from_access`)."""
    message = access_probes.judge_access(p, status, body)
    if not message:
        return [], []
    records: list[dict] = []
    defects.from_access(records, p.label, p.endpoint, status)
    return records, [message]


def upload(case: UploadCase, status: int | None, body: bytes) -> tuple[list[dict], list[str]]:
    """An upload-trust answer: ``non-audio-accepted``, ... when a refused case was accepted."""
    message = upload_probes.judge_upload(case.label, case.expect, status, body)
    if not message:
        return [], []
    records: list[dict] = []
    defects.from_upload(records, case.label, status)
    return records, [message]


def login_limit(
    route: limit_probes.LimitedRoute, seen: list[LimitProbe]
) -> tuple[list[dict], list[str]]:
    """A run of wrong logins past the login limit: the limit's problems, and its records as the
    pytest limit probe names them (``limiter-500``, ``limit-missing``, ``retry-after-missing``)."""
    problems = limit_probes.judge_limit(route, seen)[1]
    evidence = limit_probes.limit_evidence(route, [(p.status, p.retry_after) for p in seen])
    records: list[dict] = []
    defects.from_limit(records, route.endpoint, name=route.name, **evidence)
    return records, problems


def logins_to_limit(statuses: list[int | None]) -> int | None:
    """How many wrong logins it took until the first limit refusal (None: none refused)."""
    for i, status in enumerate(statuses):
        if access_probes.limit_refused(status):
            return i + 1
    return None
