"""The capacity search's requests: the persona's mix (`contract.mix`) as engine `Request`s.

`prepare` logs the accounts in and reads what each one owns (its sessions and patients, its id),
once, before any step; `MixFactory` then draws each request's action by the mix's weights
(seeded) and its account in turn, so every step sends the same mix the Locust persona does, less
the actions a per-account budget paces (uploads: see `contract.mix.left_out`).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadkit.contract import api, mix
from loadkit.measure.http import Request
from loadkit.suite.session import Authenticator, setup_fetch

LISTED = 50  # ids kept per account, as the persona keeps them
NOTES_EXPECT = frozenset({200, 404})  # no notes yet is an answer, as in the persona
# Routes with a limit of their own: a 5xx there may be a limiter answering 500 (deployed).
LIMITED_ENDPOINTS = frozenset(
    api.endpoint(m, p)
    for m, p in (("POST", api.LOGIN), ("POST", api.SIGNUP), ("POST", api.REFRESH),
                 ("POST", api.SESSION_UPLOAD), ("POST", api.SESSION_EXTRACT_NOTES))
)  # fmt: skip


@dataclass
class Therapist:
    """One logged-in account and what it owns on the target."""

    headers: dict[str, str]
    me_id: str | None = None
    session_ids: list[str] = field(default_factory=list)
    patient_ids: list[str] = field(default_factory=list)


def _ids(status: int, body: bytes) -> list[str]:
    try:
        data = json.loads(body) if status == 200 else []
    except ValueError:
        return []
    rows = data if isinstance(data, list) else []
    return [str(r["id"]) for r in rows if isinstance(r, dict) and "id" in r][:LISTED]


async def prepare(auth: Authenticator, accounts: Sequence[api.Account]) -> list[Therapist]:
    """Each account's headers, id, sessions and patients (setup requests, outside any step)."""
    out = []
    for account in accounts:
        headers = await auth.headers(account)
        me = await auth.me(account)
        t = Therapist(headers, str(me["id"]) if me.get("id") else None)
        for path, ids in ((api.SESSIONS, t.session_ids), (api.PATIENTS, t.patient_ids)):
            req = Request("GET", f"{path}?limit={LISTED}", headers=headers)
            ids += _ids(*await setup_fetch(auth.client, req, timeout_s=auth.timeout_s))
        out.append(t)
    return out


def _get(path: str, endpoint: str, t: Therapist, expect=200) -> Request:
    return Request("GET", path, endpoint, t.headers, expect=expect)


def _one_of(ids: list[str], rng: random.Random, template: str) -> str | None:
    return api.path(template, id=rng.choice(ids)) if ids else None


def _session(t: Therapist, rng: random.Random) -> Request:
    path = _one_of(t.session_ids, rng, api.SESSION)
    if path is None:  # nothing to view yet: the list, as the persona's next task would
        return _get(api.SESSIONS, api.endpoint("GET", api.SESSIONS), t)
    return _get(path, api.endpoint("GET", api.SESSION), t)


def _notes(t: Therapist, rng: random.Random) -> Request:
    path = _one_of(t.session_ids, rng, api.SESSION_NOTES)
    if path is None:
        return _get(api.SESSIONS, api.endpoint("GET", api.SESSIONS), t)
    return _get(path, api.endpoint("GET", api.SESSION_NOTES), t, NOTES_EXPECT)


def _patient_sessions(t: Therapist, rng: random.Random) -> Request:
    query = f"?patient_id={rng.choice(t.patient_ids)}" if t.patient_ids else ""
    return _get(api.SESSIONS + query, api.endpoint("GET", api.SESSIONS), t)


def _create_patient(t: Therapist, rng: random.Random) -> Request:
    payload = api.patient_payload(rng)
    if t.me_id:
        payload["therapist_id"] = t.me_id  # the deployed service requires it
    req = Request.json("POST", api.PATIENTS, payload, headers=t.headers)
    return Request(req.method, req.path, api.endpoint("POST", api.PATIENTS), req.headers, req.body)


BUILDERS: dict[str, Callable[[Therapist, random.Random], Request]] = {
    "list_sessions": lambda t, rng: _get(api.SESSIONS, api.endpoint("GET", api.SESSIONS), t),
    "view_session": _session,
    "list_patients": lambda t, rng: _get(api.PATIENTS, api.endpoint("GET", api.PATIENTS), t),
    "patient_sessions": _patient_sessions,
    "view_notes": _notes,
    "create_patient": _create_patient,
    "health": lambda t, rng: Request("GET", api.HEALTH, api.endpoint("GET", api.HEALTH)),
}


class MixFactory:
    """An engine factory: request i is an action drawn by weight, for the next account in turn."""

    def __init__(self, kind: str, therapists: Sequence[Therapist], *, seed: int = 0) -> None:
        if not therapists:
            raise ValueError("the mix needs at least one logged-in account")
        self.actions = mix.arrival_mix(kind)
        self.cumulative = list(itertools.accumulate(a.weight for a in self.actions))
        self.therapists = list(therapists)
        self.rng = random.Random(seed)

    def __call__(self, i: int) -> Request:
        action = self.rng.choices(self.actions, cum_weights=self.cumulative)[0]
        return BUILDERS[action.name](self.therapists[i % len(self.therapists)], self.rng)

    def describe(self) -> list[dict]:
        """The mix sent: each action's name, route and share of requests."""
        total = self.cumulative[-1]
        return [
            {"action": a.name, "endpoint": a.endpoint, "share": round(a.weight / total, 3)}
            for a in self.actions
        ]
