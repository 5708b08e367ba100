"""The authentication probes sent after the access-control probe's load: a missing header (401,
not 403), the access token after logout, whom an accepted upload is credited to, and whether a
client-chosen X-Forwarded-For escapes the login limit. Each names its defect in the report.

Login budget: one real login (the logout probe, a fresh token pair, so the suite's cached tokens
live on) and, on a loopback target only, the wrong logins that spend the login limit on a made-up
email (at most the budget's count + 2). Probes that cannot run say why in the report's extra.
"""

from __future__ import annotations

import asyncio
import json
import time

from loadkit.contract import api
from loadkit.probes import access_probes as ap
from loadkit.probes import auth_findings, driver, probe_requests
from loadkit.suite.harness import Ctx
from loadkit.suite.outcome import Outcome
from loadkit.verdicts import defects, slo
from loadkit.watch.loopback import is_loopback

PATIENT = api.endpoint("GET", api.PATIENT)
MAX_WAIT_S = 120.0


async def auth_defect_probes(
    ctx: Ctx, outcome: Outcome, owner: api.Account, intruder: api.Account, uploads: list
) -> None:
    """All four probes; ``uploads`` are the access probe's accepted uploads into owner's patient."""
    found = outcome.extra["auth_probe"] = {}
    found["missing_auth"] = await _missing_auth(ctx, outcome)
    found["upload_credit"] = await _credit(ctx, outcome, owner, uploads)
    found["after_logout"] = await _after_logout(ctx, outcome, intruder)
    found["forwarded_for"] = await _forwarded_for(ctx, outcome)
    named = sum(bool(v.get("defect")) for v in found.values())
    outcome.thresholds += slo.check({"auth_defects": named}, {"auth_defects": 0})


async def _send(ctx: Ctx, outcome: Outcome, p: probe_requests.ProbeRequest, judge=None):
    kw = {"timeout_s": ctx.target.timeout_s}
    return await driver.send(ctx.auth.client, outcome.recorder, p, judge=judge, **kw)


def _name(outcome: Outcome, found: auth_findings.Finding) -> dict:
    outcome.problems.append(found.message)
    defects.add(outcome.defects, found.id, found.route, found.message, **found.evidence)
    return {"defect": found.id, **found.evidence}


async def _missing_auth(ctx: Ctx, outcome: Outcome) -> dict:
    """GET /api/v1/me with no Authorization header: 401 (the deployed service says 403)."""
    p = ap.me_request({}, f"GET {api.ME} with no Authorization header")
    reply = await _send(ctx, outcome, p, judge=lambda s, b: ap.judge_missing_auth(s))
    found, message = auth_findings.missing_auth(reply.status)
    if found:
        return _name(outcome, found)
    if message:
        outcome.problems.append(message)
    return {"status": reply.status}


async def _credit(ctx: Ctx, outcome: Outcome, owner: api.Account, uploads: list) -> dict:
    """Sessions belong to their patient's therapist: the access probe's accepted uploads into the
    owner's patient, and the newest sessions the owner can list (the run's uploads among them,
    everyone's where lists are not scoped) against their patients. The deployed service credits
    an upload to the first therapist in its database."""
    owner_id = str((await ctx.auth.me(owner)).get("id"))
    not_sent = None
    if not uploads:  # the access probe's uploads were refused or left out: one of the owner's
        uploads, not_sent = await _own_upload(ctx, outcome, owner)
    judged, owners = await _listed_sessions(ctx, outcome, await ctx.auth.headers(owner))
    if not (uploads or judged):
        return {"skipped": f"{not_sent}; no session listed: nothing to judge"}
    found = auth_findings.credit([r.body for r in uploads], judged, owners, owner_id)
    if found is None:
        return {"accepted": len(uploads), "sessions_checked": len(judged)}
    return _name(outcome, found)


async def _own_upload(ctx: Ctx, outcome: Outcome, owner: api.Account) -> tuple[list, str | None]:
    """One upload of the owner's into its own patient, from the run's upload budget: ([the
    accepted reply], None), or ([], why there is none)."""
    refused = ctx.claim_uploads(1)
    if refused:
        return [], f"no upload of the owner's: {refused}"
    headers, patient = await ctx.auth.headers(owner), await ctx.auth.patient_id(owner)
    reply = await _send(ctx, outcome, ap.own_upload(patient, headers))
    if reply.status != 200:
        return [], f"the owner's upload got {reply.status}"
    return [reply], None


async def _patient_therapist(ctx: Ctx, outcome: Outcome, patient: str, headers: dict):
    """The therapist_id of a patient as GET /api/patients/{id} answers it (None: unreadable)."""
    path = api.path(api.PATIENT, id=patient)
    p = probe_requests.ProbeRequest(f"GET {api.PATIENT}", "GET", path, PATIENT,
                                    frozenset({200}), dict(headers))  # fmt: skip
    reply = await _send(ctx, outcome, p)
    return ap.therapist_of(reply.body) if reply.status == 200 else None


async def _listed_sessions(ctx: Ctx, outcome: Outcome, headers: dict) -> tuple[list, dict]:
    """(the newest 50 listed sessions whose patient's therapist is known, patient -> therapist)."""
    kw = {"timeout_s": ctx.target.timeout_s}
    path = f"{api.SESSIONS}?limit=50"
    rows = await driver.get_json(ctx.auth.client, outcome.recorder, path, headers, **kw)
    owners = {}
    for patient in ap.patients_of(rows):
        if therapist := await _patient_therapist(ctx, outcome, patient, headers):
            owners[patient] = therapist
    return auth_findings.judged_sessions(rows, owners), owners


async def _after_logout(ctx: Ctx, outcome: Outcome, account: api.Account) -> dict:
    """A fresh login, its logout, then GET /api/v1/me with the old access token: 401."""
    login, sent_at = await _own_login(ctx, outcome, account)
    try:
        token = api.parse_token_response(json.loads(login.body or b"null"), sent_at)
    except ValueError:
        return {"skipped": f"the probe's own login got {login.status}: logout not probed"}
    out = await _send(ctx, outcome, ap.logout_request(token))
    if out.status != 200:
        return {"skipped": f"logout answered {out.status}: the token after logout not probed"}
    headers = api.auth_headers(token.access_token)
    p = ap.me_request(headers, f"GET {api.ME} with a logged-out access token")
    after = await _send(ctx, outcome, p, judge=lambda s, b: ap.judge_after_logout(s))
    found, message = auth_findings.after_logout(after.status)
    if found:
        return _name(outcome, found)
    outcome.problems += [message] if message else []
    return {"status": after.status}


async def _own_login(ctx: Ctx, outcome: Outcome, account: api.Account):
    """One login in a slot of the budget; refused by the address's limit, one more after its
    window (the suite's own logins may have filled it): (reply, when it was sent)."""
    budget = ctx.plan.manager.budget
    for attempt in range(2):
        await asyncio.sleep(min(budget.reserve(), MAX_WAIT_S))
        sent_at = time.time()
        login = await _send(ctx, outcome, ap.login_request(account))
        if attempt or not ap.limit_refused(login.status):
            return login, sent_at
        budget.refused()
    return login, sent_at


async def _forwarded_for(ctx: Ctx, outcome: Outcome) -> dict:
    """Spend the login limit on a made-up email, then the same login with X-Forwarded-For."""
    from loadkit.suite.probe_scenarios import clear_login_window

    if not is_loopback(ctx.target.url):
        return {"skipped": "not a loopback target: the login limit is not spent on a real one"}
    await clear_login_window(ctx, outcome, "the X-Forwarded-For probe")
    budget, email = ctx.plan.manager.budget, probe_requests.probe_email()
    sent, most = 0, budget.rate.count + 1
    while sent < most:
        sent += 1
        if ap.limit_refused((await _send(ctx, outcome, probe_requests.wrong_login(email))).status):
            break
    else:
        budget.note_sent(sent)
        said = f"{sent} wrong logins were all answered: the login limit is above the login budget"
        return {"skipped": f"{said} ({budget.rate.count}), so X-Forwarded-For was not judged"}
    reply = await _send(ctx, outcome, ap.forwarded_login(email), lambda s, b: ap.judge_forwarded(s))
    budget.note_sent(sent + 1)
    found = auth_findings.forwarded(reply.status, sent)
    if found:
        return _name(outcome, found)
    return {"status": reply.status, "logins_to_limit": sent}
