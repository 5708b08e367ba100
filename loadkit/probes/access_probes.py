"""Access-control probes: no, tampered, expired, unsigned and another's
token on the contract's protected routes, and the verdict on what came back; and the authentication
defects of the deployed service: 403 for a missing header, a token alive after logout, an upload
credited to another therapist, a client-chosen X-Forwarded-For."""

from __future__ import annotations

import dataclasses
import json
import time

from loadkit.contract import api, jwt
from loadkit.measure.http import encode_multipart
from loadkit.probes.probe_requests import (
    MAX_IDS_SHOWN,
    NOT_YOURS,
    REFUSED,
    ProbeRequest,
    Victim,
    json_request,
    wrong_login,
)

# Tokens ------------------------------------------------------------------------------------------


def forged_tokens(access_token: str) -> dict[str, str]:
    """Bad variants of a valid token: tampered signature, expired claims, unsigned (alg none).

    Without a JWT (an opaque token) the expired and unsigned variants cannot be made; a truncated
    token stands in for them.
    """
    flipped = access_token[:-1] + ("A" if access_token[-1:] != "A" else "B")
    claims = jwt.claims(access_token)
    if claims is None:
        return {"tampered token": flipped, "truncated token": access_token[:-8]}
    head, _, sig = access_token.split(".")
    expired = {**claims, "exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}
    unsigned_head = jwt.b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "tampered token": flipped,
        "expired token": f"{head}.{jwt.b64(json.dumps(expired).encode())}.{sig}",
        "unsigned token": f"{unsigned_head}.{jwt.b64(json.dumps(claims).encode())}.",
    }


# Access control ----------------------------------------------------------------------------------


def _upload_body(seed: int = 7) -> tuple[bytes, str]:
    file = ("probe.wav", api.wav_bytes(2048, seed=seed), api.UPLOAD_CONTENT_TYPE)
    return encode_multipart({}, {api.UPLOAD_FIELD: file})


def _targets(victim: Victim) -> list[tuple[str, str, str, bytes | None, str | None]]:
    """(method, template, path, body, content type) of each route holding the victim's data."""
    body, ctype = _upload_body()
    return [
        ("GET", api.PATIENT, api.path(api.PATIENT, id=victim.patient_id), None, None),
        ("GET", api.SESSION, api.path(api.SESSION, id=victim.session_id), None, None),
        ("GET", api.SESSIONS, f"{api.SESSIONS}?patient_id={victim.patient_id}", None, None),
        ("POST", api.SESSION_UPLOAD, api.upload_path(victim.patient_id), body, ctype),
    ]


def access_requests(victim: Victim, intruder: dict[str, str]) -> list[ProbeRequest]:
    """Every (credential, route) pair: no or bad token -> 401/403; another's token -> 404."""
    token = victim.headers["Authorization"].removeprefix("Bearer ")
    credentials: list[tuple[str, dict[str, str], frozenset[int]]] = [("no token", {}, REFUSED)]
    credentials += [(n, api.auth_headers(t), REFUSED) for n, t in forged_tokens(token).items()]
    credentials.append(("another therapist's token", dict(intruder), NOT_YOURS))
    out = []
    for name, headers, expect in credentials:
        for method, template, path, body, ctype in _targets(victim):
            sent = {**headers, **({"Content-Type": ctype} if ctype else {})}
            label = f"{method} {template} with {name}"
            endpoint = api.endpoint(method, template)
            out.append(ProbeRequest(label, method, path, endpoint, expect, sent, body))
    return out


def response_ids(body: bytes) -> list[str]:
    """The ``id`` fields of a JSON object or list (at most MAX_IDS_SHOWN); nothing else of it."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    items = data if isinstance(data, list) else [data]
    ids = [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i]
    return ids[:MAX_IDS_SHOWN] + ([f"... {len(ids)} in all"] if len(ids) > MAX_IDS_SHOWN else [])


def judge_access(probe: ProbeRequest, status: int | None, body: bytes) -> str | None:
    """None when refused as the contract says; else a message naming the route and the ids."""
    if status in probe.expect:
        return None
    if status is None:
        return f"{probe.label}: no response"
    ids = response_ids(body) if 200 <= status < 300 else []
    if 200 <= status < 300:
        shown = f"ids {', '.join(ids)}" if ids else f"{len(body)} bytes"
        return f"access-control defect: {probe.label} answered {status} (leaked {shown})"
    wanted = "/".join(str(s) for s in sorted(probe.expect))
    return f"access-control defect: {probe.label} answered {status}, expected {wanted}"


# Authentication defects ---------------------------------------------------------------------------

SPOOFED_ADDRESS = "203.0.113.7"  # TEST-NET-3 (RFC 5737): no real client has it
ME = api.endpoint("GET", api.ME)


def me_request(headers: dict[str, str], label: str) -> ProbeRequest:
    """GET /api/v1/me with ``headers``: the contract's answer without a valid token is 401."""
    return ProbeRequest(label, "GET", api.ME, ME, frozenset({401}), dict(headers))


def judge_missing_auth(status: int | None) -> str | None:
    """None for 401; 403 is the deployed deviation (``missing-auth-403``); else what came."""
    if status in (401, None):
        return None
    return f"auth defect: GET {api.ME} with no Authorization header answered {status}, not 401"


def login_request(account: api.Account) -> ProbeRequest:
    """A real login of ``account`` (its body holds the password: never recorded)."""
    return json_request("POST", api.LOGIN, account.login_body(), {200})


def logout_request(token: api.Token) -> ProbeRequest:
    """POST /api/v1/logout of ``token``'s refresh token, called with its access token."""
    headers = api.auth_headers(token.access_token)
    body = {"refresh_token": token.refresh_token}
    return json_request("POST", api.LOGOUT, body, {200}, headers=headers)


def judge_after_logout(status: int | None) -> str | None:
    """None when the logged-out access token is refused (401); a message when it still works."""
    if status is None or status == 401:
        return None
    return f"auth defect: the access token answered {status} on GET {api.ME} after logout"


def own_upload(patient_id: str, headers: dict[str, str]) -> ProbeRequest:
    """An upload of valid audio by a patient's own therapist: 200, a session credited to them."""
    body, ctype = _upload_body(seed=11)
    endpoint = api.endpoint("POST", api.SESSION_UPLOAD)
    label = f"POST {api.SESSION_UPLOAD} into one's own patient"
    sent = {**headers, "Content-Type": ctype}
    return ProbeRequest(
        label, "POST", api.upload_path(patient_id), endpoint, frozenset({200}), sent, body
    )


def therapist_of(body: bytes) -> str | None:
    """The ``therapist_id`` of a session or patient in a JSON body (None when there is none)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    found = data.get("therapist_id") if isinstance(data, dict) else None
    return str(found) if found else None


def judge_credit(body: bytes, owner_id: str) -> str | None:
    """A message when an accepted upload into the owner's patient names another therapist."""
    credited = therapist_of(body)
    if credited is None or credited == owner_id:
        return None
    return (
        f"auth defect: an upload into therapist {owner_id}'s patient was credited to therapist "
        f"{credited}"
    )


def patients_of(sessions: object, most: int = 5) -> list[str]:
    """The patient ids of listed sessions, newest first, at most ``most`` distinct ones."""
    rows = sessions if isinstance(sessions, list) else []
    ids = [str(r["patient_id"]) for r in rows if isinstance(r, dict) and r.get("patient_id")]
    return list(dict.fromkeys(ids))[:most]


def miscredited(sessions: object, therapist_of_patient: dict[str, str]) -> list[tuple[str, str]]:
    """(session id, credited therapist) of each listed session whose ``therapist_id`` is not its
    patient's therapist (the contract: an upload's session belongs to the patient's therapist)."""
    rows = sessions if isinstance(sessions, list) else []
    out = []
    for r in rows:
        if not isinstance(r, dict) or not r.get("therapist_id"):
            continue
        owner = therapist_of_patient.get(str(r.get("patient_id")))
        if owner and str(r["therapist_id"]) != owner:
            out.append((str(r.get("id")), str(r["therapist_id"])))
    return out


def forwarded_login(email: str, address: str = SPOOFED_ADDRESS) -> ProbeRequest:
    """The same wrong login, claiming another client address in X-Forwarded-For."""
    p = wrong_login(email)
    label = f"{p.label} with X-Forwarded-For {address}"
    return dataclasses.replace(p, label=label, headers={**p.headers, "X-Forwarded-For": address})


def limit_refused(status: int | None) -> bool:
    """Whether a login was refused by its limit (429, or the deployed limiter's 5xx)."""
    return status == 429 or (status is not None and status >= 500)


def judge_forwarded(status: int | None) -> str | None:
    """With the login limit spent: a message when the spoofed-address login was answered."""
    if status is None or limit_refused(status):
        return None
    return (
        f"auth defect: with the login limit spent, a login claiming X-Forwarded-For "
        f"{SPOOFED_ADDRESS} was answered {status}: the server keys limits on a client-chosen header"
    )
