"""The seven headless load scenarios, written once: build engine requests,
run them with `loadkit.suite.harness`, judge them against the targets profile."""

from __future__ import annotations

import time

from loadkit.contract import api
from loadkit.measure import engine
from loadkit.measure.http import Request
from loadkit.measure.trace import TracingRecorder, thirds_p95_ms
from loadkit.suite.harness import (
    FAILED_MESSAGES,
    RATE_LIMIT_PARAMS,
    UPLOAD,
    Ctx,
    ProbeRecorder,
    check_read_limits,
    closed_run,
    finish_run,
    in_turn,
    monitored,
    poll_until_processed,
    run_summary,
    session_reads,
    upload_requests,
)
from loadkit.suite.outcome import Outcome
from loadkit.suite.session import with_seed_fallback
from loadkit.verdicts import defects, slo
from loadkit.verdicts.ratelimit_verdict import judge

# 1. concurrent health checks ----------------------------------------------------------------------


async def concurrent_health_checks(ctx: Ctx, outcome: Outcome) -> None:
    """``health.concurrent`` simultaneous GET /health."""
    n = int(ctx.profile.scenario("health")["concurrent"])
    outcome.parameters.update(users=n, requests=n)
    req = Request("GET", api.HEALTH, api.endpoint("GET", api.HEALTH))
    async with monitored(ctx, outcome):
        await closed_run(ctx, outcome, [req], concurrency=n, requests=n)
    check_read_limits(outcome, ctx.profile)


async def concurrent_sessions(ctx: Ctx, outcome: Outcome) -> None:
    """``sessions.concurrent`` simultaneous authenticated reads of one's own sessions."""
    n = int(ctx.profile.scenario("sessions")["concurrent"])
    accounts = await ctx.accounts(2 * n)
    reads = await session_reads(ctx, accounts)
    outcome.parameters.update(users=n, requests=n, accounts=len(accounts))
    async with monitored(ctx, outcome):
        await closed_run(ctx, outcome, reads, concurrency=n, requests=n)
    check_read_limits(outcome, ctx.profile)


async def concurrent_uploads(ctx: Ctx, outcome: Outcome) -> None:
    """``uploads.concurrent`` simultaneous uploads (one per account: 10/hour), then processing."""
    sizes = ctx.profile.scenario("uploads")
    n, size = int(sizes["concurrent"]), int(sizes["upload_size_bytes"])
    timeout_s = float(sizes["processing_timeout_s"])
    outcome.skip_reason = ctx.claim_uploads(n)
    if outcome.skip_reason:
        return
    accounts = await ctx.take(n)
    owned: list[tuple[str, dict]] = []
    uploads = await upload_requests(ctx, accounts, size, owned)
    outcome.parameters.update(users=n, requests=n, upload_size_bytes=size, accounts=len(accounts))
    async with monitored(ctx, outcome):
        await closed_run(ctx, outcome, uploads, concurrency=n, requests=n)
        final = await poll_until_processed(ctx, owned, timeout_s)
    _judge_uploads(ctx, outcome, n, [sid for sid, _ in owned], final, timeout_s)


def _uploads_refused(ctx: Ctx, outcome: Outcome) -> int:
    """Uploads the limiter refused (429 or 5xx); any marks the run's upload budget scarce."""
    statuses = outcome.recorder.status_codes
    refused = sum(n for code, n in statuses.items() if code == 429 or code >= 500)
    if refused and ctx.uploads is not None:
        ctx.uploads.mark_scarce()
    return refused


def _judge_uploads(ctx: Ctx, outcome: Outcome, n: int, ids, final, timeout_s: float) -> None:
    _uploads_refused(ctx, outcome)
    processed = sum(1 for s in final.values() if s == "processed")
    outcome.extra["processing"] = {
        "uploaded": len(ids),
        "processed": processed,
        "failed": sum(1 for s in final.values() if s == "failed"),
        "unfinished": len(ids) - len(final),
        "timeout_s": timeout_s,
    }
    outcome.thresholds += slo.check(run_summary(outcome), ctx.profile.limits("upload"))
    outcome.thresholds += slo.check(
        {"sessions_processed": processed}, {"min:sessions_processed": n}
    )
    if processed < n:
        why = sorted({FAILED_MESSAGES.get(sid, "") for sid, st in final.items() if st == "failed"})
        said = f"; the server said: {'; '.join(w for w in why if w)[:300]}" if any(why) else ""
        outcome.problems.append(
            f"{processed} of {n} uploads reached 'processed' within {timeout_s:g} s "
            f"({len(ids)} uploaded, {len(ids) - len(final)} unfinished){said}"
        )


async def _limit_requests(ctx: Ctx, which: str, recorder: ProbeRecorder) -> list[Request]:
    account = ctx.plan.reserved_for(0 if which == "default_limit" else 1)
    await with_seed_fallback(ctx.plan, ctx.auth, [account])
    headers = await ctx.auth.headers(account)
    expect = frozenset({200, 429})
    if which == "default_limit":
        return [Request("GET", api.SESSIONS, headers=headers, expect=expect,
                        header_check=recorder.header_check)]  # fmt: skip
    patient = await ctx.auth.patient_id(account)
    file = ("limit.wav", api.wav_bytes(4096, seed=99), api.UPLOAD_CONTENT_TYPE)
    return [
        Request.multipart(
            "POST",
            api.upload_path(patient),
            files={api.UPLOAD_FIELD: file},
            endpoint=UPLOAD,
            headers=headers,
            expect=expect,
            header_check=recorder.header_check,
        )
    ]


async def rate_limit_enforcement(ctx: Ctx, outcome: Outcome, which: str) -> None:
    """Rapid requests on a reserved account past ``limit``; judged by `ratelimit_verdict`."""
    sizes = ctx.profile.scenario(RATE_LIMIT_PARAMS[which])
    n, limit, window = int(sizes["requests"]), int(sizes["limit"]), float(sizes["window_s"])
    if ctx.plan.reserved_for(1) is None:
        outcome.skip_reason = (
            f"the rate-limit tests need 2 reserved accounts beside the others; "
            f"there are {ctx.plan.roles.describe()}"
        )
        return
    if which == "upload_limit":
        outcome.skip_reason = ctx.claim_uploads(n)
        if outcome.skip_reason:
            return
    recorder = outcome.recorder = ProbeRecorder()
    reqs = await _limit_requests(ctx, which, recorder)
    concurrency = 1 if which == "upload_limit" else 4
    outcome.parameters.update(users=concurrency, requests=n, limit=limit, window_s=window)
    async with monitored(ctx, outcome):
        await closed_run(ctx, outcome, reqs, concurrency=concurrency, requests=n, recorder=recorder)
    thresholds, problems = judge(recorder.probes, limit=limit, window_s=window)
    outcome.thresholds += thresholds
    outcome.problems += problems
    refusals = [p for p in recorder.probes if p.status == 429]
    defects.from_limit(
        outcome.defects,
        reqs[0].endpoint,
        name="default" if which == "default_limit" else "upload",
        statuses=dict(outcome.recorder.status_codes),
        refused=len(refusals),
        bare=sum(not (p.retry_after or "").strip().isdigit() for p in refusals),
        total=len(recorder.probes),
    )
    outcome.extra["limit_probe"] = {
        "allowed": sum(p.allowed for p in recorder.probes),
        "refused_429": sum(p.status == 429 for p in recorder.probes),
    }


async def database_pool_stress(ctx: Ctx, outcome: Outcome) -> None:
    """``pool.concurrent`` simultaneous filtered session lists while the pool is sampled."""
    n = int(ctx.profile.scenario("pool")["concurrent"])
    accounts = await ctx.accounts(2 * n)
    reqs = []
    for account in accounts:
        patient = await ctx.auth.patient_id(account)
        query = f"?patient_id={patient}&status=processed&limit=50"
        reqs.append(Request("GET", api.SESSIONS + query, api.endpoint("GET", api.SESSIONS),
                            await ctx.auth.headers(account)))  # fmt: skip
    outcome.parameters.update(users=n, requests=n, accounts=len(accounts))
    async with monitored(ctx, outcome, pool=True):
        await closed_run(ctx, outcome, reqs, concurrency=n, requests=n)
    _judge_pool(ctx, outcome)


def _judge_pool(ctx: Ctx, outcome: Outcome) -> None:
    """Pool time-outs (counter growth, 503s) and any 5xx fail; a full pool alone is saturation."""
    summary = run_summary(outcome)
    limits = ctx.profile.limits("pool")
    allowed_timeouts = limits.pop("exhaustion_events", 0)
    outcome.thresholds += slo.check(summary, limits)
    fives = sum(n for code, n in summary["status_codes"].items() if code.startswith("5"))
    outcome.thresholds += slo.check({"http_5xx": fives}, {"http_5xx": 0})
    timeouts = outcome.extra.get("pool_timeouts")
    if timeouts is not None:
        outcome.thresholds += slo.check(
            {"pool_timeouts": timeouts}, {"pool_timeouts": allowed_timeouts}
        )
    else:
        outcome.extra["pool_timeouts_note"] = "the server reports no pool time-out counter"


# 6. sustained load (open model) -------------------------------------------------------------------


async def sustained_load(ctx: Ctx, outcome: Outcome) -> None:
    """``sustained.requests`` over ``duration_s`` at a steady arrival rate; late vs early p95."""
    sizes = ctx.profile.scenario("sustained")
    total, duration = int(sizes["requests"]), float(sizes["duration_s"])
    warmup = float(sizes.get("warmup_s", 0))
    rate = total / duration
    per_window = int(rate * min(60.0, duration + warmup)) + 1
    accounts = await ctx.accounts(per_window)
    reqs = [
        Request("GET", f"{api.SESSIONS}?limit=20", api.endpoint("GET", api.SESSIONS), h)
        for h in [await ctx.auth.headers(a) for a in accounts]
    ]
    recorder = outcome.recorder = TracingRecorder(warmup_s=warmup)
    outcome.warmup_s = warmup
    outcome.parameters.update(rate=round(rate, 3), requests=total, run_time=duration,
                              accounts=len(accounts))  # fmt: skip
    async with monitored(ctx, outcome, interval_s=1.0):
        started = time.time()
        result = await engine.run_open(
            ctx.target.url,
            in_turn(reqs),
            rate=rate,
            duration_s=duration + warmup,
            recorder=recorder,
            max_in_flight=1000,
            **ctx.run_kw(),
        )
    finish_run(outcome, result, started)
    _judge_sustained(ctx, outcome, recorder)


def _judge_sustained(ctx: Ctx, outcome: Outcome, recorder: TracingRecorder) -> None:
    steady = [s for s in recorder.samples if s.at >= (recorder.t0 or 0) + recorder.warmup_s]
    early, late = thirds_p95_ms(steady)
    ratio = round(late / early, 3) if early and late is not None else None
    outcome.extra["early_late"] = {"early_p95_ms": early, "late_p95_ms": late, "ratio": ratio}
    check_read_limits(outcome, ctx.profile)
    outcome.thresholds += slo.check(
        {"late_to_early_p95_ratio": ratio}, ctx.profile.limits("sustained")
    )


# 7. memory leak detection -------------------------------------------------------------------------


async def memory_leak_detection(ctx: Ctx, outcome: Outcome) -> None:
    """Warm up, then ``memory.requests`` requests while the server's RSS is sampled."""
    n = int(ctx.profile.scenario("memory")["requests"])
    warm = max(10, n // 10)
    accounts = await ctx.accounts(n + warm)
    reqs = await session_reads(ctx, accounts)
    await engine.run_closed(ctx.target.url, in_turn(reqs), concurrency=5, requests=warm,
                            recorder=TracingRecorder(), **ctx.run_kw())  # fmt: skip
    outcome.parameters.update(users=10, requests=n, warmup_requests=warm, accounts=len(accounts))
    async with monitored(ctx, outcome, interval_s=0.1):
        await closed_run(ctx, outcome, reqs, concurrency=10, requests=n)
    _judge_memory(ctx, outcome)


def _judge_memory(ctx: Ctx, outcome: Outcome) -> None:
    growth = (outcome.resources or {}).get("memory_growth_mb")
    outcome.thresholds += slo.check(run_summary(outcome), {"error_rate_percent": 1.0})
    if growth is None:
        reason = (outcome.resources or {}).get("unavailable_reason", "server memory not measured")
        outcome.skip_reason = f"memory growth not asserted: {reason}"
        return
    outcome.thresholds += slo.check({"memory_growth_mb": growth}, ctx.profile.limits("memory"))
