"""Defect probes of the contract's known weak spots: requests to send and verdicts on the answers.

Pure logic, written once and driven by both suites (no pytest, no Locust, no I/O): the pytest side
(`loadkit.probe_driver`) sends these `ProbeRequest`s on the async engine's client, the Locust
persona with its own client. Four probes:
- access control: no token, a tampered, an expired and an unsigned token, and another therapist's
  valid token, on a patient, a session, a session list and an upload; each must be refused
  (401/403, or 404 for another's data). A leak is reported by route, status and ids only: never a
  body, a name or a token;
- limiter semantics: every limited route of the contract, past its limit; judged like the
  rate-limit scenario (`ratelimit_verdict`), with the statuses that count as "let through" per
  route (a wrong-password login is a 401 that still spends a slot);
- upload trust: bytes that are not audio under an audio name and type, a wrong type, an unlisted
  audio type, an empty file, an oversized body, beside valid uploads: each refused as the contract
  says, and the session count grows by exactly the accepted uploads;
- state after a refusal: a 429 carries no token, and counts before and after match.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field

from loadkit import api
from loadkit.http import encode_multipart
from loadkit.ratelimit_verdict import LimitProbe, boundary_crossed, max_in_window

REFUSED = frozenset(api.REFUSED_WITHOUT_TOKEN)
NOT_YOURS = frozenset({404})
MAX_IDS_SHOWN = 3
ALL_STATUSES = frozenset(range(100, 600))


@dataclass(frozen=True)
class ProbeRequest:
    """One probe request: what to send, the statuses that are correct, and a label for messages."""

    label: str
    method: str
    path: str
    endpoint: str
    expect: frozenset[int]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Victim:
    """A therapist's own data that others must not reach: ids and the owner's headers."""

    patient_id: str
    session_id: str
    headers: dict[str, str] = field(repr=False)


# Tokens ------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(token: str) -> dict | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def forged_tokens(access_token: str) -> dict[str, str]:
    """Bad variants of a valid token: tampered signature, expired claims, unsigned (alg none).

    Without a JWT (an opaque token) the expired and unsigned variants cannot be made; a truncated
    token stands in for them.
    """
    flipped = access_token[:-1] + ("A" if access_token[-1:] != "A" else "B")
    claims = _claims(access_token)
    if claims is None:
        return {"tampered token": flipped, "truncated token": access_token[:-8]}
    head, _, sig = access_token.split(".")
    expired = {**claims, "exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}
    unsigned_head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "tampered token": flipped,
        "expired token": f"{head}.{_b64(json.dumps(expired).encode())}.{sig}",
        "unsigned token": f"{unsigned_head}.{_b64(json.dumps(claims).encode())}.",
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


# Limiter semantics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitedRoute:
    """A limited route of the contract: its limit and which statuses spend a slot."""

    name: str
    endpoint: str
    limit: int
    window_s: float
    counted: frozenset[int]
    keyed_by: str
    extra: int = 2  # requests sent past the limit


LIMITED_ROUTES = {
    "default": LimitedRoute(
        "default", api.endpoint("GET", api.SESSIONS), 100, 60, frozenset({200}), "user"
    ),
    "login": LimitedRoute(
        "login", api.endpoint("POST", api.LOGIN), 5, 60, frozenset({401}), "address and email"
    ),
    "signup": LimitedRoute(
        "signup", api.endpoint("POST", api.SIGNUP), 3, 3600, frozenset({201}), "address"
    ),
    "refresh": LimitedRoute(
        "refresh", api.endpoint("POST", api.REFRESH), 10, 60, frozenset({200}), "address"
    ),
    "upload": LimitedRoute(
        "upload", api.endpoint("POST", api.SESSION_UPLOAD), 10, 3600, frozenset({200}), "user"
    ),
    "extract": LimitedRoute(
        "extract",
        api.endpoint("POST", api.SESSION_EXTRACT_NOTES),
        20,
        3600,
        frozenset({200}),
        "user",
    ),
}


def with_limit(route: LimitedRoute, limit: int | None, window_s: float | None) -> LimitedRoute:
    """The route with a configured limit (targets.toml) instead of the contract's."""
    return LimitedRoute(
        route.name,
        route.endpoint,
        int(limit or route.limit),
        float(window_s or route.window_s),
        route.counted,
        route.keyed_by,
        route.extra,
    )


def probe_email() -> str:
    """A made-up address nobody has: login attempts on it spend no real account's limit."""
    return f"probe-{uuid.uuid4().hex[:16]}@example.com"


def wrong_login(email: str) -> ProbeRequest:
    """A login with a wrong password: 401 while under the limit, 429 past it."""
    body = json.dumps({"email": email, "password": "Probe@Wrong-Passw0rd"}).encode()
    return ProbeRequest(
        f"POST {api.LOGIN} (unknown email)",
        "POST",
        api.LOGIN,
        api.endpoint("POST", api.LOGIN),
        frozenset({401, 429}),
        {"Content-Type": "application/json"},
        body,
    )


def json_request(method: str, path: str, payload: object, expect, **kw) -> ProbeRequest:
    """A JSON probe request named by ``path``'s template (``endpoint`` keyword overrides)."""
    endpoint = kw.pop("endpoint", api.endpoint(method, path.split("?")[0]))
    headers = {**kw.pop("headers", {}), "Content-Type": "application/json"}
    body = json.dumps(payload).encode()
    return ProbeRequest(endpoint, method, path, endpoint, frozenset(expect), headers, body)


def judge_limit(route: LimitedRoute, probes: list[LimitProbe]) -> tuple[list[dict], list[str]]:
    """The limit holds, refusals are 429 with an integer Retry-After, nothing else came back."""
    let_through = [p for p in probes if p.status in route.counted]
    allowed = max_in_window([p.at for p in let_through], route.window_s)
    crossed = boundary_crossed(
        [LimitProbe(p.at, 200 if p.status in route.counted else p.status) for p in probes]
    )
    ceiling = 2 * route.limit if crossed else route.limit
    refusals = [p for p in probes if p.status == 429]
    bare = [p for p in refusals if not (p.retry_after or "").strip().isdigit()]
    odd = sorted({str(p.status) for p in probes if p.status not in route.counted | {429}})
    where = f"{route.endpoint} (limit {route.limit} per {route.window_s:g} s by {route.keyed_by})"
    rows = [
        _row(f"{route.name}_allowed_in_any_window_max", ceiling, allowed),
        _row(f"{route.name}_refused_429_min", 1, len(refusals), minimum=True),
        _row(f"{route.name}_refusals_without_retry_after_max", 0, len(bare)),
        _row(f"{route.name}_unexpected_responses_max", 0, len(odd)),
    ]
    problems = []
    if allowed > ceiling:
        problems.append(f"limiter defect on {where}: {allowed} let through within one window")
    if not refusals:
        problems.append(f"limiter defect on {where}: none of {len(probes)} requests got a 429")
    if bare:
        problems.append(f"limiter defect on {where}: {len(bare)} 429s lack an integer Retry-After")
    if odd:
        problems.append(f"limiter defect on {where}: past the limit it answered {', '.join(odd)}")
    return rows, problems


def _row(metric: str, limit: float, actual: float, *, minimum: bool = False) -> dict:
    passed = actual >= limit if minimum else actual <= limit
    return {"metric": metric, "limit": limit, "actual": actual, "passed": passed}


def token_in_body(body: bytes) -> bool:
    """Whether a response body hands out a token (a refused login or refresh must not)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and bool(data.get("access_token") or data.get("refresh_token"))


def unchanged(what: str, before: object, after: object, expected_after: object) -> str | None:
    """A problem when a count or state moved other than the allowed requests explain."""
    if after == expected_after:
        return None
    return f"a refused request changed state: {what} went from {before} to {after}, " + (
        f"expected {expected_after}"
    )


# Upload trust ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadCase:
    """One upload: a label, the file part, and the statuses the contract gives it."""

    label: str
    filename: str
    content_type: str
    content: bytes
    expect: frozenset[int]

    @property
    def valid(self) -> bool:
        return 200 in self.expect


def upload_cases(size: int, valid: int = 3) -> list[UploadCase]:
    """``valid`` real WAV uploads and one of each refusal the contract names (oversize apart)."""
    not_audio = (b"%PDF-1.4 not audio at all\n" * (size // 26 + 1))[:size]
    wav = api.wav_bytes(size, seed=11)
    cases = [
        UploadCase(
            f"valid upload {i + 1}",
            f"probe-{i}.wav",
            api.UPLOAD_CONTENT_TYPE,
            api.wav_bytes(size, seed=20 + i),
            frozenset({200}),
        )
        for i in range(valid)
    ]
    cases += [
        UploadCase(
            "non-audio bytes named probe.wav (audio/wav)",
            "probe.wav",
            api.UPLOAD_CONTENT_TYPE,
            not_audio,
            frozenset({400}),
        ),
        UploadCase(
            "WAV bytes sent as text/plain", "probe.wav", "text/plain", wav, frozenset({400})
        ),
        UploadCase(
            "an unlisted audio type (audio/ogg)", "probe.wav", "audio/ogg", wav, frozenset({415})
        ),
        UploadCase("an empty file", "probe.wav", api.UPLOAD_CONTENT_TYPE, b"", frozenset({400})),
    ]
    return cases


def upload_request(case: UploadCase, patient_id: str, headers: dict[str, str]) -> ProbeRequest:
    """The multipart upload of one case (any status is recorded; the verdict is `judge_upload`)."""
    body, ctype = encode_multipart(
        {}, {api.UPLOAD_FIELD: (case.filename, case.content, case.content_type)}
    )
    return ProbeRequest(
        case.label,
        "POST",
        api.upload_path(patient_id),
        api.endpoint("POST", api.SESSION_UPLOAD),
        case.expect,
        {**headers, "Content-Type": ctype},
        body,
    )


def judge_upload(label: str, expect: frozenset[int], status: int | None, body: bytes) -> str | None:
    """None when the upload got its contract status; else a message (session id, never content)."""
    if status in expect:
        return None
    got = "no response" if status is None else f"answered {status}"
    wanted = "/".join(str(s) for s in sorted(expect))
    if status is not None and 200 <= status < 300 and 200 not in expect:
        ids = response_ids(body)
        made = f", session {ids[0]} created" if ids else ""
        return f"upload-trust defect: {label} was accepted ({status}{made}); expected {wanted}"
    return f"upload-trust defect: {label} {got}, expected {wanted}"


def oversize_head(path: str, headers: dict[str, str], declared: int) -> tuple[bytes, bytes, str]:
    """(multipart preamble, closing boundary, Content-Type) of an upload declared ``declared``
    bytes long; the caller streams filler bytes between them."""
    boundary = uuid.uuid4().hex
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{api.UPLOAD_FIELD}"; '
        f'filename="oversized.wav"\r\nContent-Type: {api.UPLOAD_CONTENT_TYPE}\r\n\r\n'
    ).encode() + api.wav_bytes(1024, seed=3)[:44]
    closing = f"\r\n--{boundary}--\r\n".encode()
    return preamble, closing, f"multipart/form-data; boundary={boundary}"


def session_count_problem(before: int | None, after: int | None, accepted: int) -> str | None:
    """A problem when the session count did not grow by exactly the accepted uploads."""
    if before is None or after is None:
        return "the session count could not be read before and after the uploads"
    if after - before == accepted:
        return None
    return (
        f"upload-trust defect: sessions went from {before} to {after} for {accepted} accepted "
        f"uploads: a refused upload left {after - before - accepted} session(s) behind"
    )
