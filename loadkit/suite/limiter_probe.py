"""The limiter-semantics probe: each limited route of the contract driven
past its limit on requests that spend no real account's budget, judged route by route."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time

from loadkit.contract import api
from loadkit.probes import driver, limit_probes, probe_requests, upload_probes
from loadkit.suite.harness import Ctx, monitored
from loadkit.suite.outcome import Outcome
from loadkit.suite.probe_scenarios import (
    clear_login_window,
    send_kw,
    start_clock,
    too_few,
    transcribed_session,
)
from loadkit.suite.session import PROBE_ACCOUNTS
from loadkit.verdicts import defects


async def limiter_semantics_probe(ctx: Ctx, outcome: Outcome, route_name: str) -> None:
    """One limited route past its limit: it holds, 429 + Retry-After, refusals change nothing."""
    sizes = ctx.profile.scenario("probes")
    route = limit_probes.with_limit(
        limit_probes.LIMITED_ROUTES[route_name],
        sizes.get(f"{route_name}_limit"),
        sizes.get(f"{route_name}_window_s"),
    )
    account = ctx.plan.probe_account(route_name) if route_name in PROBE_ACCOUNTS else None
    if route_name in PROBE_ACCOUNTS and account is None:
        outcome.skip_reason = too_few(ctx, "the limiter probe")
        return
    outcome.parameters.update(route=route.endpoint, limit=route.limit, window_s=route.window_s)
    if route_name == "login":
        await clear_login_window(ctx, outcome, "the login limit probe")
    if route_name in ("upload", "extract"):
        outcome.skip_reason = ctx.claim_uploads(
            route.limit + route.extra if route_name == "upload" else 1
        )
        if outcome.skip_reason:
            return
    async with monitored(ctx, outcome):
        started = start_clock(outcome)
        replies, state = await _LIMIT_RUNS[route_name](ctx, outcome, route, account)
        outcome.duration_s = time.time() - started
    if route_name == "login":
        ctx.plan.manager.budget.note_sent(len(replies) + 1)
    errors, judged = limit_probes.split_route_errors(route, replies)
    if errors:
        _route_errors(outcome, route, errors, judged)
    if any(r.status in route.counted for r in judged) or not errors:
        rows, problems = limit_probes.judge_limit(route, [r.probe() for r in judged])
        outcome.thresholds += rows
        outcome.problems += problems
        _limit_defects(outcome, route, route_name, judged, state)
    else:
        outcome.problems.append(limit_probes.not_judged(route, errors, judged))
    outcome.problems += [p for p in state if p]
    outcome.extra["limit_probe"] = {
        "route": route.endpoint,
        "keyed_by": route.keyed_by,
        "let_through": sum(r.status in route.counted for r in replies),
        "refused_429": sum(r.status == 429 for r in replies),
        "route_errors_within_limit": len(errors),
    }


def _route_errors(outcome: Outcome, route, errors: list, judged: list) -> None:
    """5xx answers before the limit's count of successes: the route's defect, not the limiter's."""
    id_, message, evidence = limit_probes.route_error_defect(route, errors, judged)
    outcome.problems.append(f"route defect: {message}")
    defects.add(outcome.defects, id_, route.endpoint, message, **evidence)
    outcome.thresholds.append({"metric": f"{route.name}_route_errors_within_limit_max",
                               "limit": 0, "actual": len(errors), "passed": False})  # fmt: skip


def _limit_defects(outcome: Outcome, route, name: str, replies: list, state: list) -> None:
    answers = [(r.status, r.headers.get("retry-after")) for r in replies]
    evidence = limit_probes.limit_evidence(route, answers)
    defects.from_limit(outcome.defects, route.endpoint, name=name, **evidence)
    if any(s and "keyed by address alone" in s for s in state):
        said = "the login limit is keyed by client address alone, not (address, email)"
        defects.add(outcome.defects, "login-limit-by-address", route.endpoint, said)


def _no_token_in_429s(replies: list, what: str) -> str | None:
    leaky = [r for r in replies if r.status == 429 and limit_probes.token_in_body(r.body)]
    return f"a refused {what} handed out a token ({len(leaky)} times)" if leaky else None


async def _limit_default(ctx: Ctx, outcome: Outcome, route, account):
    headers = await ctx.auth.headers(account)
    p = probe_requests.ProbeRequest(
        route.endpoint, "GET", api.SESSIONS, route.endpoint, route.counted | {429}, headers
    )
    replies = await driver.sequence(
        ctx.auth.client,
        outcome.recorder,
        [p] * (route.limit + route.extra),
        concurrency=4,
        **send_kw(ctx),
    )
    return replies, []


async def _limit_login(ctx: Ctx, outcome: Outcome, route, _account):
    email = probe_requests.probe_email()
    reqs = [probe_requests.wrong_login(email)] * (route.limit + route.extra)
    client, kw = ctx.auth.client, send_kw(ctx)
    replies = await driver.sequence(client, outcome.recorder, reqs, **kw)
    other = await driver.send(
        client, outcome.recorder, probe_requests.wrong_login(probe_requests.probe_email()), **kw
    )
    keyed = (
        None
        if other.status == 401
        else (
            f"after the limit on one email, another email's login got {other.status}: the login "
            "limit is keyed by address alone, not by (address, email)"
        )
    )
    return replies, [_no_token_in_429s(replies, "login"), keyed]


async def _limit_signup(ctx: Ctx, outcome: Outcome, route, _account):
    payloads = [api.signup_payload() for _ in range(route.limit + route.extra)]
    client, kw = ctx.auth.client, send_kw(ctx)
    reqs = [
        probe_requests.json_request("POST", api.SIGNUP, b, route.counted | {429}) for b in payloads
    ]
    replies = await driver.sequence(client, outcome.recorder, reqs, **kw)
    refused = [b for b, r in zip(payloads, replies, strict=True) if r.status == 429]
    state = [_no_token_in_429s(replies, "signup")]
    if refused:
        body = {"email": refused[-1]["email"], "password": refused[-1]["password"]}
        login = probe_requests.json_request("POST", api.LOGIN, body, {401, 429})
        got = await driver.send(client, outcome.recorder, login, **kw)
        if got.status == 200:
            state.append("a refused signup created its account anyway: its login succeeded")
    return replies, state


async def _limit_refresh(ctx: Ctx, outcome: Outcome, route, account):
    """The account's token from the manager (no login spent); the rotated token goes back."""
    client, kw = ctx.auth.client, send_kw(ctx)
    held = await ctx.auth.token(account)
    if not held.refresh_token:
        return [], ["the refresh probe's account has no refresh token"]
    token, latest, replies = held.refresh_token, None, []
    for _ in range(route.limit + route.extra):
        p = probe_requests.json_request("POST", api.REFRESH, {"refresh_token": token}, {200, 429})
        reply = await driver.send(client, outcome.recorder, p, **kw)
        replies.append(reply)
        if reply.status == 200:
            with contextlib.suppress(ValueError):
                latest = api.parse_token_response(json.loads(reply.body), time.time())
                token = latest.refresh_token or token
    if latest is not None:  # the old refresh token is spent: keep the newest pair
        ctx.plan.manager.store.put(account.email, latest)
    return replies, [_no_token_in_429s(replies, "refresh")]


async def _limit_upload(ctx: Ctx, outcome: Outcome, route, account):
    client, kw = ctx.auth.client, send_kw(ctx)
    headers, patient = await ctx.auth.headers(account), await ctx.auth.patient_id(account)
    before = await driver.session_count(client, outcome.recorder, headers, patient, **kw)
    case = upload_probes.upload_cases(4096, valid=1)[0]
    reqs = [
        dataclasses.replace(
            upload_probes.upload_request(case, patient, headers), expect=route.counted | {429}
        )
    ] * (route.limit + route.extra)
    replies = await driver.sequence(client, outcome.recorder, reqs, **kw)
    after = await driver.session_count(client, outcome.recorder, headers, patient, **kw)
    allowed = sum(r.status == 200 for r in replies)
    expected = None if before is None else before + allowed
    return replies, [limit_probes.unchanged("the patient's session count", before, after, expected)]


async def _limit_extract(ctx: Ctx, outcome: Outcome, route, account):
    client, kw = ctx.auth.client, send_kw(ctx)
    headers = await ctx.auth.headers(account)
    sid = await transcribed_session(ctx, outcome, account)
    if sid is None:
        return [], ["the extract-notes probe found no transcribed session of its account"]
    path = api.path(api.SESSION_EXTRACT_NOTES, id=sid)
    p = probe_requests.ProbeRequest(
        route.endpoint, "POST", path, route.endpoint, route.counted | {429}, headers
    )
    replies = await driver.sequence(
        client, outcome.recorder, [p] * (route.limit + route.extra), **kw
    )
    one = await driver.get_json(
        client, outcome.recorder, api.path(api.SESSION, id=sid), headers, **kw
    )
    replies.append(await driver.send(client, outcome.recorder, p, **kw))
    two = await driver.get_json(
        client, outcome.recorder, api.path(api.SESSION, id=sid), headers, **kw
    )
    stamp = [(s or {}).get("updated_at") for s in (one, two)]
    changed = replies[-1].status == 429 and stamp[0] != stamp[1]
    return replies, [
        "a refused extract-notes changed the session's updated_at" if changed else None
    ]


_LIMIT_RUNS = {
    "default": _limit_default,
    "login": _limit_login,
    "signup": _limit_signup,
    "refresh": _limit_refresh,
    "upload": _limit_upload,
    "extract": _limit_extract,
}
