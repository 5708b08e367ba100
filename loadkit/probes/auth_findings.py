"""The authentication defects as findings (pure, no Locust, no asyncio): what the pytest suite's
`suite.auth_defects` and Locust's DefectProber both name from the same answers, so the two faces
give the same id, route, message and evidence.

Each function takes what a probe saw and gives ``(Finding or None, problem or None)``: a finding
is a named defect (``missing-auth-403``, ``token-valid-after-logout``,
``upload-credited-to-another``, ``forwarded-for-trusted``); a problem without a finding is a
wrong answer no defect id names (a 500 where 401 belongs, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadkit.contract import api
from loadkit.probes import access_probes as ap

UPLOAD = api.endpoint("POST", api.SESSION_UPLOAD)
LOGIN = api.endpoint("POST", api.LOGIN)


@dataclass(frozen=True)
class Finding:
    """One named defect: its id, route, message and evidence (statuses, counts, ids)."""

    id: str
    route: str
    message: str
    evidence: dict = field(default_factory=dict)


def missing_auth(status: int | None) -> tuple[Finding | None, str | None]:
    """GET /api/v1/me with no Authorization header: 401; 403 is ``missing-auth-403``."""
    message = ap.judge_missing_auth(status)
    if message and status == 403:
        return Finding("missing-auth-403", ap.ME, message, {"status": 403}), message
    return None, message


def after_logout(status: int | None) -> tuple[Finding | None, str | None]:
    """The logged-out access token on GET /api/v1/me: 401; 200 is ``token-valid-after-logout``."""
    message = ap.judge_after_logout(status)
    if message and status == 200:
        return Finding("token-valid-after-logout", ap.ME, message, {"status": 200}), message
    return None, message


def forwarded(status: int | None, logins_to_limit: int) -> Finding | None:
    """With the login limit spent, the login claiming X-Forwarded-For: refused, or
    ``forwarded-for-trusted``."""
    message = ap.judge_forwarded(status)
    if not message:
        return None
    evidence = {"status": status, "logins_to_limit": logins_to_limit}
    return Finding("forwarded-for-trusted", LOGIN, message, evidence)


def listed_message(session: str, therapist: str) -> str:
    return (
        f"auth defect: session {session} is credited to therapist {therapist}, not to its "
        "patient's therapist"
    )


def judged_sessions(rows: object, owners: dict[str, str]) -> list[dict]:
    """The listed sessions whose patient's therapist is known (those the credit is judged on)."""
    items = rows if isinstance(rows, list) else []
    return [r for r in items if isinstance(r, dict) and str(r.get("patient_id")) in owners]


def credit(
    bodies: list[bytes], judged: list[dict], owners: dict[str, str], owner_id: str
) -> Finding | None:
    """``upload-credited-to-another`` when an accepted upload into the owner's patient (its reply
    ``bodies``) or a listed session (``judged``, patient -> therapist in ``owners``) names
    another therapist than its patient's."""
    direct = [(ap.judge_credit(b, owner_id), ap.therapist_of(b)) for b in bodies]
    direct = [(m, t) for m, t in direct if m]
    listed = ap.miscredited(judged, owners)
    if not (direct or listed):
        return None
    message = direct[0][0] if direct else listed_message(*listed[0])
    evidence = {
        "accepted": len(bodies),
        "sessions_checked": len(judged),
        "credited": sorted({str(t) for _, t in direct + listed}),
        "sessions": [s for s, _ in listed][:3],
        "owner": owner_id,
    }
    return Finding("upload-credited-to-another", UPLOAD, message, evidence)
