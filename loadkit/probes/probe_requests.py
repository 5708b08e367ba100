"""A defect probe's request, as both faces send it (the asyncio driver and
Locust's DefectProber), and the small request builders the probes share."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from loadkit.contract import api

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
