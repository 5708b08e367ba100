"""Access-control probes: no, tampered, expired, unsigned and another's
token on the contract's protected routes, and the verdict on what came back."""

from __future__ import annotations

import base64
import json
import time

from loadkit.contract import api
from loadkit.measure.http import encode_multipart
from loadkit.probes.probe_requests import MAX_IDS_SHOWN, NOT_YOURS, REFUSED, ProbeRequest, Victim

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
