"""Defects as data: each weak spot a test finds is also a record ``{id, route, message, evidence}``
in the report's ``defects`` list, with stable ids, so reports and later issues can count them.

Ids: ``limiter-500`` (a 5xx where a limit should answer 429), ``limit-missing`` (a limit that never
refused; ``default-limit-missing`` for the default one), ``retry-after-missing``,
``login-limit-by-address``, ``data-without-token``, ``bad-token-accepted``,
``foreign-patient-readable``, ``foreign-session-readable``, ``foreign-upload-accepted``,
``non-audio-accepted``, ``wrong-type-accepted``, ``unlisted-type-accepted``,
``empty-upload-accepted``, ``oversize-not-refused``, ``refused-upload-leaves-session``,
``event-loop-blocked``, and (suite/auth_defects.py) ``missing-auth-403``,
``token-valid-after-logout``, ``upload-credited-to-another``, ``forwarded-for-trusted``.
Evidence holds statuses, counts and ids, never a body or a token.
"""

from __future__ import annotations

from loadkit.contract import api

UPLOAD_CASE_IDS = {
    "non-audio bytes": "non-audio-accepted",
    "text/plain": "wrong-type-accepted",
    "unlisted audio type": "unlisted-type-accepted",
    "an empty file": "empty-upload-accepted",
}


def add(defects: list[dict], id_: str, route: str, message: str, **evidence: object) -> None:
    """Add one record (one per id and route: a repeat adds to its evidence count)."""
    for known in defects:
        if known["id"] == id_ and known["route"] == route:
            known["evidence"]["count"] = int(known["evidence"].get("count", 1)) + 1
            return
    defects.append({"id": id_, "route": route, "message": message, "evidence": dict(evidence)})


def from_limit(defects: list[dict], route: str, *, name: str, statuses: dict, refused: int,
               bare: int, total: int) -> None:  # fmt: skip
    """The limiter defects of one limit test: 5xx past it, no refusal, 429 without Retry-After."""
    fives = {s: n for s, n in statuses.items() if str(s).isdigit() and int(s) >= 500}
    if fives:
        add(defects, "limiter-500", route, f"past the limit {route} answered "
            f"{', '.join(map(str, sorted(fives)))} instead of 429 with Retry-After",
            statuses=fives)  # fmt: skip
    elif not refused:
        id_ = "default-limit-missing" if name == "default" else "limit-missing"
        add(defects, id_, route, f"{route} never refused: none of {total} requests got a 429",
            requests=total)  # fmt: skip
    if bare:
        add(defects, "retry-after-missing", route, f"{bare} refusals of {route} lack an integer "
            "Retry-After", refusals=bare)  # fmt: skip


def from_access(defects: list[dict], label: str, endpoint: str, status: int | None) -> None:
    """The record of one access-control message (its probe's label names the credential)."""
    if status is None or not 200 <= status < 300:
        return
    if "another therapist" in label:
        id_ = {
            api.endpoint("GET", api.PATIENT): "foreign-patient-readable",
            api.endpoint("POST", api.SESSION_UPLOAD): "foreign-upload-accepted",
        }.get(endpoint, "foreign-session-readable")
    else:
        id_ = "data-without-token" if "no token" in label else "bad-token-accepted"
    add(defects, id_, endpoint, f"{label} answered {status}", status=status)


def from_upload(defects: list[dict], label: str, status: int | None) -> None:
    """The record of one upload-trust case that was accepted although the contract refuses it."""
    if status is None or not 200 <= status < 300:
        return
    for words, id_ in UPLOAD_CASE_IDS.items():
        if words in label:
            route = api.endpoint("POST", api.SESSION_UPLOAD)
            add(defects, id_, route, f"{label} was accepted ({status})", status=status)
            return
