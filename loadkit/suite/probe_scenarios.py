"""The defect-probe scenarios: access control, upload trust and the
event loop, sent with `loadkit.probes.driver` beside a little load."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from loadkit.contract import api
from loadkit.measure import engine
from loadkit.measure.http import Request
from loadkit.probes import access_probes, driver, probe_requests, upload_probes
from loadkit.suite.auth_defects import auth_defect_probes
from loadkit.suite.harness import (
    FAILED_MESSAGES,
    UPLOAD,
    Ctx,
    closed_run,
    in_turn,
    monitored,
    poll_until_processed,
    session_reads,
    upload_requests,
)
from loadkit.suite.outcome import Outcome, inconclusive
from loadkit.suite.session import PROBE_ACCOUNTS
from loadkit.verdicts import defects, slo
from loadkit.watch import canary

# defect probes (loadkit.probes; sent by loadkit.probes.driver)
# -------------------------------------


def _probe_sizes(ctx: Ctx) -> dict:
    return ctx.profile.scenario("probes")


def send_kw(ctx: Ctx) -> dict[str, Any]:
    return {"timeout_s": ctx.target.timeout_s}


def start_clock(outcome: Outcome) -> float:
    """Fix the recorder's origin before concurrent requests record out of start order."""
    outcome.recorder.start()
    return time.time()


async def _victim(ctx: Ctx, account: api.Account, outcome: Outcome) -> probe_requests.Victim:
    """The account's patient and one of that patient's sessions (a made-up id when it has none)."""
    headers = await ctx.auth.headers(account)
    patient = await ctx.auth.patient_id(account)
    path = f"{api.SESSIONS}?patient_id={patient}&limit=1"
    listed = await driver.get_json(ctx.auth.client, outcome.recorder, path, headers, **send_kw(ctx))
    ids = [s["id"] for s in listed or [] if isinstance(s, dict) and "id" in s]
    if not ids:
        outcome.extra["access_probe_note"] = "the victim has no session: a made-up id is probed"
    return probe_requests.Victim(patient, str(ids[0]) if ids else str(uuid.uuid4()), headers)


async def _background_load(ctx: Ctx, outcome: Outcome, reads, stop: asyncio.Event) -> None:
    """The realistic load: session reads of general accounts until ``stop`` (bounded)."""
    sizes = _probe_sizes(ctx)
    n, seconds = int(sizes["load_concurrency"]), float(sizes["load_max_s"])
    await engine.run_closed(
        ctx.target.url,
        in_turn(reads),
        concurrency=n,
        requests=int(sizes["load_requests"]),
        duration_s=seconds,
        recorder=outcome.recorder,
        stop=stop,
        **ctx.run_kw(),
    )


async def access_control_probe(ctx: Ctx, outcome: Outcome) -> None:
    """No, tampered, expired, unsigned and another therapist's token, under load: all refused."""
    rounds = int(_probe_sizes(ctx)["access_rounds"])
    owner, intruder = await ctx.take(2)
    victim = await _victim(ctx, owner, outcome)
    reqs = access_probes.access_requests(victim, await ctx.auth.headers(intruder)) * rounds
    left_out = ctx.claim_uploads(sum(p.endpoint == UPLOAD for p in reqs))
    if left_out:  # the address's upload budget is for other tests: probe the reads alone
        reqs = [p for p in reqs if p.endpoint != UPLOAD]
        outcome.extra["access_probe_note"] = f"uploads left out: {left_out}"
    client, kw = ctx.auth.client, send_kw(ctx)
    before = await driver.session_count(
        client, outcome.recorder, victim.headers, victim.patient_id, **kw
    )
    reads = await session_reads(ctx, await ctx.accounts(int(_probe_sizes(ctx)["load_requests"])))
    outcome.parameters.update(probe_requests=len(reqs), rounds=rounds)
    stop, found, accepted = asyncio.Event(), [], []
    async with monitored(ctx, outcome):
        started = start_clock(outcome)
        load = asyncio.ensure_future(_background_load(ctx, outcome, reads, stop))
        for p in reqs:
            judge = lambda s, b, p=p: access_probes.judge_access(p, s, b)  # noqa: E731
            reply = await driver.send(client, outcome.recorder, p, judge=judge, **kw)
            message = judge(reply.status, reply.body)
            if message:
                found.append(message)
                defects.from_access(outcome.defects, p.label, p.endpoint, reply.status)
            accepted += [reply] if p.endpoint == UPLOAD and reply.status == 200 else []
        stop.set()
        await load
        outcome.duration_s = time.time() - started
    after = await driver.session_count(
        client, outcome.recorder, victim.headers, victim.patient_id, **kw
    )
    _judge_access(outcome, reqs, found, before, after)
    await auth_defect_probes(ctx, outcome, owner, intruder, accepted)


def _judge_access(outcome: Outcome, reqs, defects: list[str], before, after) -> None:
    distinct = list(dict.fromkeys(defects))
    outcome.problems += distinct[:10]
    if len(distinct) > 10:
        outcome.problems.append(f"... and {len(distinct) - 10} more access-control defects")
    moved = upload_probes.session_count_problem(before, after, 0)
    if moved:
        outcome.problems.append(moved.replace("upload-trust", "access-control"))
    outcome.extra["access_probe"] = {
        "requests": len(reqs),
        "defects": len(defects),
        "sessions_before": before,
        "sessions_after": after,
    }
    outcome.thresholds += slo.check({"access_defects": len(defects)}, {"access_defects": 0})


MAX_LOGIN_WAIT_S = 120.0


async def clear_login_window(ctx: Ctx, outcome: Outcome, what: str) -> None:
    """Before a probe spends the address's login budget: every account the run needs holds a
    token (logged in ahead), and once logins were refused, the budget's window is waited out."""
    budget = ctx.plan.manager.budget
    wait = min(budget.window_clear_in(), MAX_LOGIN_WAIT_S)
    if wait > 0:
        await asyncio.sleep(wait)
        said = f"waited {wait:.0f} s for the address's login window to clear before {what}"
    else:
        said = f"every account this run needs held a token before {what} ran"
    outcome.extra["login_budget"] = said


async def transcribed_session(ctx: Ctx, outcome: Outcome, account: api.Account) -> str | None:
    """A session of the account that has a transcript (one upload, polled; bounded)."""
    client, kw = ctx.auth.client, send_kw(ctx)
    headers, patient = await ctx.auth.headers(account), await ctx.auth.patient_id(account)
    for s in (
        await driver.get_json(client, outcome.recorder, f"{api.SESSIONS}?limit=50", headers, **kw)
        or []
    ):
        if s.get("status") in ("transcribed", "processed"):
            return str(s["id"])
    case = upload_probes.upload_cases(4096, valid=1)[0]
    up = await driver.send(
        client, outcome.recorder, upload_probes.upload_request(case, patient, headers), **kw
    )
    ids = access_probes.response_ids(up.body) if up.status == 200 else []
    if not ids:
        return None
    final = await poll_until_processed(ctx, [(ids[0], headers)], 60.0)
    return ids[0] if final.get(ids[0]) == "processed" else None


def too_few(ctx: Ctx, who: str) -> str:
    from loadkit.contract.accounts import MIN_GENERAL, RESERVED

    need = RESERVED + len(PROBE_ACCOUNTS) + MIN_GENERAL
    return (
        f"too few accounts to give {who} one of its own: it needs {need} accounts in all, "
        f"there are {ctx.plan.roles.describe()}"
    )


async def upload_trust_probe(ctx: Ctx, outcome: Outcome) -> None:
    """Non-audio, wrong-type, empty and oversized uploads beside valid ones: refused, no trace."""
    account = ctx.plan.probe_account("upload_trust")
    if account is None:
        outcome.skip_reason = too_few(ctx, "the upload-trust probe")
        return
    sizes, client, kw = _probe_sizes(ctx), ctx.auth.client, send_kw(ctx)
    headers, patient = await ctx.auth.headers(account), await ctx.auth.patient_id(account)
    cases = upload_probes.upload_cases(int(sizes["upload_size_bytes"]))
    outcome.skip_reason = ctx.claim_uploads(len(cases) + 1)
    if outcome.skip_reason:
        return
    before = await driver.session_count(client, outcome.recorder, headers, patient, **kw)
    outcome.parameters.update(uploads=len(cases) + 1, max_upload_bytes=sizes["max_upload_bytes"])
    async with monitored(ctx, outcome):
        started = start_clock(outcome)
        replies = await _trust_uploads(ctx, outcome, cases, patient, headers)
        big = None
        if not any(_spent(r) for r in replies):  # a spent limit: the oversize is not judged
            big = await driver.oversized_upload(
                client,
                outcome.recorder,
                api.upload_path(patient),
                headers,
                declared=int(sizes["max_upload_bytes"]) + 1,
                time_s=float(sizes["oversize_stream_s"]),
                **kw,
            )
        outcome.duration_s = time.time() - started
    after = await driver.session_count(client, outcome.recorder, headers, patient, **kw)
    processed = await _processing_of(ctx, cases, replies, headers)
    _judge_upload_trust(outcome, cases, replies, big, before, after)
    if not outcome.skip_reason:
        _judge_processing(outcome, processed)
        outcome.thresholds += slo.check(
            {"upload_trust_defects": len(outcome.problems)}, {"upload_trust_defects": 0}
        )


def _spent(reply: driver.Reply) -> bool:
    return upload_probes.budget_spent(reply.status, reply.headers, reply.body)


async def _trust_uploads(ctx: Ctx, outcome: Outcome, cases, patient: str, headers) -> list:
    """The first case alone (a limit already spent shows there: the rest are not sent), then
    the others at once."""

    def one(c):
        return driver.send(ctx.auth.client, outcome.recorder,
                           upload_probes.upload_request(c, patient, headers),
                           judge=_upload_judge(c), **send_kw(ctx))  # fmt: skip

    first = await one(cases[0])
    if _spent(first):
        return [first]
    return [first, *await asyncio.gather(*(one(c) for c in cases[1:]))]


def _upload_judge(c):
    """The case's verdict for the recorder; a 5xx is recorded as such (it may be the limiter's)."""

    def judge(status, body):
        if status is not None and status >= 500:
            return None
        return upload_probes.judge_upload(c.label, c.expect, status, body)

    return judge


async def _processing_of(ctx: Ctx, cases, replies, headers) -> dict[str, str]:
    """How the valid uploads' sessions ended (polled, bounded; unfinished ones are left out)."""
    ids = [
        access_probes.response_ids(r.body)[0]
        for c, r in zip(cases, replies, strict=False)
        if c.valid and r.status == 200 and access_probes.response_ids(r.body)
    ]
    wait_s = float(_probe_sizes(ctx).get("processing_wait_s", 10))
    return await poll_until_processed(ctx, [(sid, headers) for sid in ids], wait_s) if ids else {}


def _judge_processing(outcome: Outcome, final: dict[str, str]) -> None:
    found = upload_probes.processing_defect(final, FAILED_MESSAGES)
    if found:
        message, evidence = found
        outcome.problems.append(f"processing defect: {message}")
        defects.add(outcome.defects, "processing-failed", UPLOAD, message, **evidence)


def _judge_upload_trust(outcome: Outcome, cases, replies, big, before, after) -> None:
    refused = [c.label for c, r in zip(cases, replies, strict=False) if _spent(r)]
    spent = refused + [c.label for c in cases[len(replies) :]]  # not sent: the limit was spent
    if big is None or upload_probes.budget_spent(big[0], big[2]):
        refused += [] if big is None else ["the oversized body"]
        spent.append("the oversized body")
    problems = _trust_problems(cases, replies)
    why = upload_probes.spent_reason(len(cases) + 1, len(refused), spent) if spent else ""
    outcome.extra["upload_probe"] = {"not_judged": spent}
    if spent and not problems:
        outcome.skip_reason = why
        return
    if all(r.status is not None and r.status >= 500 for r in replies):
        got = ", ".join(sorted({str(r.status) for r in replies}))
        outcome.skip_reason = f"every upload of the probe answered {got}: none could be judged"
        return
    outcome.problems += problems
    outcome.problems += [why] if why else []
    for c, r in zip(cases, replies, strict=False):
        if not _spent(r) and upload_probes.judge_upload(c.label, c.expect, r.status, r.body):
            defects.from_upload(outcome.defects, c.label, r.status)
    status, sent = (None, 0) if big is None else big[:2]
    if "the oversized body" not in spent:
        _judge_oversize(outcome, status, sent)
    accepted = sum(r.status == 200 for r in replies) + (status == 200)
    left = upload_probes.session_count_problem(before, after, accepted)
    outcome.problems += [left] if left else []
    if left and after is not None and before is not None:
        defects.add(outcome.defects, "refused-upload-leaves-session", UPLOAD, left,
                    sessions_before=before, sessions_after=after, accepted=accepted)  # fmt: skip
    outcome.extra["upload_probe"] = {"sessions_before": before, "sessions_after": after,
                                     "accepted": accepted, "oversize_bytes_sent": sent,
                                     "not_judged": spent}  # fmt: skip


def _judge_oversize(outcome: Outcome, status: int | None, sent: int) -> None:
    declared = int(outcome.parameters["max_upload_bytes"]) + 1
    found = upload_probes.oversize_defect(status, sent, upload_probes.oversize_filler(declared))
    if found:
        outcome.problems.append(f"upload-trust defect: {found[1]}")
        defects.add(outcome.defects, found[0], UPLOAD, found[1], status=status, sent_bytes=sent)


def _trust_problems(cases, replies) -> list[str]:
    """The upload-trust messages of the cases the limiter did not refuse."""
    return [
        m
        for c, r in zip(cases, replies, strict=False)
        if not _spent(r) and (m := upload_probes.judge_upload(c.label, c.expect, r.status, r.body))
    ]


async def event_loop_probe(ctx: Ctx, outcome: Outcome) -> None:
    """Uploads and logins at once: the /live canary's p99 stays near its idle value."""
    sizes = ctx.profile.scenario("event_loop")
    settings = canary.Settings.from_profile(ctx.profile)
    n_up, n_login = int(sizes["uploads"]), int(sizes["logins"])
    outcome.skip_reason = ctx.claim_uploads(n_up)
    if outcome.skip_reason:
        return
    accounts = await ctx.take(n_up)
    uploads = await upload_requests(ctx, accounts, int(sizes["upload_size_bytes"]), [])
    logins = [_bad_login() for _ in range(n_login)]
    await clear_login_window(ctx, outcome, "the event-loop probe's wrong logins")
    idle = await asyncio.to_thread(
        canary.measure_idle, ctx.target.url, settings, verify=ctx.target.verify
    )
    outcome.parameters.update(uploads=n_up, logins=n_login, canary_rate=settings.rate)
    live = canary.Canary(ctx.target.url, settings, verify=ctx.target.verify).start()
    async with monitored(ctx, outcome):
        await closed_run(
            ctx,
            outcome,
            uploads + logins,
            concurrency=int(sizes["concurrency"]),
            requests=n_up + n_login,
        )
    await asyncio.to_thread(live.stop)
    ctx.plan.manager.budget.note_sent(n_login)
    block = outcome.extra["canary"] = live.summary(idle)
    blocked = canary.flagged_problem(block, "uploads and logins")
    if blocked:
        outcome.problems.append(blocked)
        defects.add(outcome.defects, "event-loop-blocked", api.endpoint("GET", api.LIVE), blocked,
                    p99_ms=block.get("p99_ms"), threshold_ms=block.get("threshold_ms"))  # fmt: skip
    # uploads and logins that failed put no load on the loop: the canary's calm proves nothing
    outcome.problems += [m for m in [inconclusive(outcome.recorder, any_failed=True)] if m]
    outcome.thresholds += slo.check(
        {"canary_p99_ms": block["p99_ms"]}, {"canary_p99_ms": block["threshold_ms"] or 0}
    )


event_loop_probe.owns_canary = True


def _bad_login() -> Request:
    """A wrong-password login on a made-up email: full password-hash cost, no account's limit."""
    p = probe_requests.wrong_login(probe_requests.probe_email())
    return Request(p.method, p.path, p.endpoint, p.headers, p.body, expect=401)
