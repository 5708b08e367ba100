"""The seven headless scenarios and the baseline, written once: build engine requests, run, judge.

Each scenario is an async function ``(ctx, outcome)`` that drives `loadkit.engine` against
``ctx.target``, monitors the server where it can, and fills the `Outcome` with figures, thresholds
(from the targets profile) and problems. The pytest files only pick sizes, call these and assert;
the request builders and verdicts (`ratelimit_verdict`, `trace`) carry no pytest and no Locust.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from loadkit import (
    api,
    canary,
    cost,
    defects,
    engine,
    metrics,
    monitor,
    pool_visibility,
    probe_driver,
    probes,
    slo,
)
from loadkit.accounts import SeedEnd
from loadkit.http import HttpClient, Request
from loadkit.outcome import Outcome, inconclusive
from loadkit.ratelimit_verdict import LimitProbe, judge
from loadkit.session import (
    PROBE_ACCOUNTS,
    AccountPlan,
    AccountsUnusable,
    Authenticator,
    SetupError,
    accounts_needed,
    fetch,
    setup_fetch,
    with_seed_fallback,
)
from loadkit.targeting import Target
from loadkit.trace import TracingRecorder, thirds_p95_ms
from loadkit.upload_budget import UploadLedger

UPLOAD = api.endpoint("POST", api.SESSION_UPLOAD)
SESSIONS_LIST = api.endpoint("GET", api.SESSIONS)
RATE_LIMIT_PARAMS = {"default_limit": "rate_limit", "upload_limit": "upload_rate_limit"}
POLL_INTERVAL_S = 1.5  # per session: keeps polling far below the default limit per account
POOL_SAMPLE_S = 0.05
SERVER_SAMPLE_S = 0.25


@dataclass
class Ctx:
    """What a scenario needs: target, profile, accounts and (inside the loop) an authenticator."""

    target: Target
    profile: slo.Profile
    plan: AccountPlan | None = None
    auth: Authenticator | None = None
    name: str = ""
    uploads: UploadLedger | None = None

    def claim_uploads(self, n: int) -> str | None:
        """Spend ``n`` uploads of the run's budget: None, or why this test cannot have them."""
        return self.uploads.claim(self.name, n) if self.uploads is not None else None

    def client(self) -> HttpClient:
        return HttpClient(self.target.url, verify=self.target.verify)

    def run_kw(self) -> dict[str, Any]:
        return {"timeout_s": self.target.timeout_s, "verify": self.target.verify}

    def default_limit(self) -> int:
        return int(self.profile.scenario("rate_limit").get("limit", 100))

    async def accounts(self, requests: int) -> list[api.Account]:
        """General accounts enough for ``requests`` within one default-limit window, logged in."""
        return await self.take(accounts_needed(requests, limit=self.default_limit()))

    async def take(self, n: int) -> list[api.Account]:
        """The next ``n`` general accounts in rotation, logged in."""
        return await with_seed_fallback(self.plan, self.auth, self.plan.take(n))


def run(coro_fn, ctx: Ctx, outcome: Outcome, *args: Any) -> None:
    """Run a scenario on the engine's loop, with an authenticator bound to that loop, the /live
    canary beside it (unless the scenario runs its own) and a CPU cost estimate after it. A setup
    that fails (a login, /me, a patient) is one problem naming the route and status."""

    async def main() -> None:
        if ctx.plan is not None:
            ctx.auth = Authenticator(ctx.client(), ctx.plan.manager, ctx.target.timeout_s)
        try:
            await coro_fn(ctx, outcome, *args)
        except (SetupError, AccountsUnusable, SeedEnd, api.LoginError, api.AccountsError) as exc:
            outcome.problems.append(str(exc))

    live = None if getattr(coro_fn, "owns_canary", False) else _start_canary(ctx)
    try:
        engine.run(main())
    finally:
        if live is not None:
            live[0].stop()
            outcome.extra.setdefault("canary", live[0].summary(live[1]))
        _add_cost(outcome)


def _start_canary(ctx: Ctx) -> tuple[canary.Canary, float | None]:
    """The canary for one scenario: idle p99 (measured once per process), then the stream."""
    settings = canary.Settings.from_profile(ctx.profile)
    idle = canary.idle_p99_ms(ctx.target.url, settings, verify=ctx.target.verify)
    return canary.Canary(ctx.target.url, settings, verify=ctx.target.verify).start(), idle


def _add_cost(outcome: Outcome) -> None:
    """Per-endpoint CPU cost from the traced requests and the server's CPU samples; with pool
    samples, whether the pool figures look complete."""
    if outcome.db_pool and outcome.db_pool.get("samples"):
        users = outcome.parameters.get("users")
        outcome.extra.setdefault(
            "pool_visibility",
            pool_visibility.judge(outcome.db_pool, outcome.server_series, _summary(outcome), users),
        )
    samples = getattr(outcome.recorder, "samples", None)
    if samples and outcome.server_series:
        block = cost.estimate(samples, outcome.server_series)
        if block is not None:
            outcome.extra.setdefault("cost", block)


@asynccontextmanager
async def monitored(
    ctx: Ctx, outcome: Outcome, *, interval_s: float = SERVER_SAMPLE_S, pool: bool = False
) -> AsyncIterator[monitor.ServerMonitor]:
    """Sample the server (and the pool) while the body runs; fill the outcome's blocks after."""
    server = monitor.ServerMonitor(
        ctx.target.server_pid, interval_s=interval_s, unavailable_reason=ctx.target.resources_reason
    )
    pools = monitor.PoolMonitor(ctx.target.url, interval_s=POOL_SAMPLE_S) if pool else None
    await asyncio.to_thread(server.start)
    if pools is not None:
        await asyncio.to_thread(pools.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.sample_once)
        server.stop()
        if pools is not None:
            pools.stop()
            outcome.db_pool = pools.summary()
            outcome.extra["pool_timeouts"] = pool_timeouts(pools.samples())
        outcome.resources = server.summary()
        outcome.server_series = monitor.server_series(server, pools)


def _finish(outcome: Outcome, result: engine.RunResult, started: float) -> None:
    outcome.duration_s = time.time() - started
    throttled = outcome.recorder.status_codes.get(429, 0)
    if throttled and not isinstance(outcome.recorder, ProbeRecorder):
        outcome.problems.append(
            f"{throttled} requests were refused with 429: the rate limit, not the server, shaped "
            "these figures (does the deployment key limits by address only?)"
        )
    outcome.interrupted = outcome.interrupted or result.interrupted
    outcome.extra["engine"] = {
        "sent": result.sent,
        "completed": result.completed,
        "errors": result.errors,
        "unsent": result.unsent,
        "abandoned": result.abandoned,
    }


async def _closed(
    ctx: Ctx,
    outcome: Outcome,
    reqs: list[Request],
    *,
    concurrency: int,
    requests: int,
    recorder: metrics.RunRecorder | None = None,
) -> engine.RunResult:
    """Run ``requests`` of ``reqs`` (in turn) on ``concurrency`` workers, timed into the outcome."""
    started = time.time()
    result = await engine.run_closed(
        ctx.target.url,
        _cycle(reqs),
        concurrency=concurrency,
        requests=requests,
        recorder=outcome.recorder if recorder is None else recorder,
        **ctx.run_kw(),
    )
    _finish(outcome, result, started)
    return result


def _summary(outcome: Outcome) -> dict:
    duration = outcome.duration_s or (time.time() - outcome.started_at)
    return outcome.recorder.summary(duration_s=duration)


def check_read_limits(outcome: Outcome, profile: slo.Profile, group: str = "read") -> None:
    """Add the profile's limits of ``group`` against this run's summary."""
    outcome.thresholds += slo.check(_summary(outcome), profile.limits(group))


def _json_list(body: bytes) -> list:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _cycle(requests: list[Request]):
    """A factory handing out ``requests`` in turn."""
    return lambda i: requests[i % len(requests)]


# 1. concurrent health checks ----------------------------------------------------------------------


async def concurrent_health_checks(ctx: Ctx, outcome: Outcome) -> None:
    """``health.concurrent`` simultaneous GET /health."""
    n = int(ctx.profile.scenario("health")["concurrent"])
    outcome.parameters.update(users=n, requests=n)
    req = Request("GET", api.HEALTH, api.endpoint("GET", api.HEALTH))
    async with monitored(ctx, outcome):
        await _closed(ctx, outcome, [req], concurrency=n, requests=n)
    check_read_limits(outcome, ctx.profile)


# 2. concurrent authenticated session reads --------------------------------------------------------


async def _session_reads(ctx: Ctx, accounts: list[api.Account]) -> list[Request]:
    """GET /api/sessions/{id} of each account's own sessions (the list route when it has none)."""
    reads = []
    for account in accounts:
        headers = await ctx.auth.headers(account)
        listing = Request("GET", f"{api.SESSIONS}?limit=10", SESSIONS_LIST, headers)
        status, body = await setup_fetch(ctx.auth.client, listing, timeout_s=ctx.target.timeout_s)
        sessions = _json_list(body) if status == 200 else []
        ids = [s["id"] for s in sessions if isinstance(s, dict) and "id" in s]
        for sid in ids:
            path = api.path(api.SESSION, id=sid)
            reads.append(Request("GET", path, api.endpoint("GET", api.SESSION), headers))
        if not ids:
            reads.append(Request("GET", api.SESSIONS, headers=headers))
    return reads


async def concurrent_sessions(ctx: Ctx, outcome: Outcome) -> None:
    """``sessions.concurrent`` simultaneous authenticated reads of one's own sessions."""
    n = int(ctx.profile.scenario("sessions")["concurrent"])
    accounts = await ctx.accounts(2 * n)
    reads = await _session_reads(ctx, accounts)
    outcome.parameters.update(users=n, requests=n, accounts=len(accounts))
    async with monitored(ctx, outcome):
        await _closed(ctx, outcome, reads, concurrency=n, requests=n)
    check_read_limits(outcome, ctx.profile)


# 3. concurrent uploads, then processing -----------------------------------------------------------


def _session_id_catcher(owned: list[tuple[str, dict]], headers: dict[str, str]):
    """A response check that keeps the new session's id with the headers that may read it."""

    def check(status: int, body: bytes) -> str | None:
        try:
            owned.append((str(json.loads(body)["id"]), headers))
        except (ValueError, KeyError, TypeError):
            return "upload answered without a session id"
        return None

    return check


async def _upload_requests(ctx: Ctx, accounts, size: int, owned: list) -> list[Request]:
    """One multipart upload of real WAV bytes per account (to one of its patients)."""
    uploads = []
    for i, account in enumerate(accounts):
        headers = await ctx.auth.headers(account)
        patient = await ctx.auth.patient_id(account)
        file = (f"loadtest-{i:03d}.wav", api.wav_bytes(size, seed=i), api.UPLOAD_CONTENT_TYPE)
        uploads.append(
            Request.multipart(
                "POST",
                api.upload_path(patient),
                files={api.UPLOAD_FIELD: file},
                endpoint=UPLOAD,
                headers=headers,
                check=_session_id_catcher(owned, headers),
            )
        )
    return uploads


async def _poll_until_processed(
    ctx: Ctx, owned: list[tuple[str, dict]], timeout_s: float
) -> dict[str, str]:
    """Poll GET /api/sessions/{id} until every session is processed or failed (bounded in time)."""
    final: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(final) < len(owned) and time.monotonic() < deadline:
        for sid, headers in owned:
            if sid in final:
                continue
            req = Request("GET", api.path(api.SESSION, id=sid), headers=headers)
            status, body, _ = await fetch(ctx.auth.client, req, timeout_s=ctx.target.timeout_s)
            session = _json_object(body) if status == 200 else {}
            if session.get("status") in ("processed", "failed"):
                final[sid] = session["status"]
                if session["status"] == "failed":
                    FAILED_MESSAGES[sid] = str(session.get("error_message") or "no error_message")
        await asyncio.sleep(POLL_INTERVAL_S)
    return final


FAILED_MESSAGES: dict[str, str] = {}  # session id -> the server's error_message


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


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
    uploads = await _upload_requests(ctx, accounts, size, owned)
    outcome.parameters.update(users=n, requests=n, upload_size_bytes=size, accounts=len(accounts))
    async with monitored(ctx, outcome):
        await _closed(ctx, outcome, uploads, concurrency=n, requests=n)
        final = await _poll_until_processed(ctx, owned, timeout_s)
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
    outcome.thresholds += slo.check(_summary(outcome), ctx.profile.limits("upload"))
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


# 4. rate-limit enforcement ------------------------------------------------------------------------


class ProbeRecorder(TracingRecorder):
    """A recorder that also pairs each response with its Retry-After header (see `header_check`)."""

    def __init__(self) -> None:
        super().__init__()
        self.retry_after: str | None = None
        self.probes: list[LimitProbe] = []

    def header_check(self, status: int, headers) -> None:
        """Engine header check: remember Retry-After for the record() that follows synchronously."""
        self.retry_after = headers.get("retry-after")

    def record(self, endpoint, latency_s, *, status=None, error_kind=None, message="", at=None):
        at = time.time() if at is None else at
        self.probes.append(LimitProbe(at, status, self.retry_after if status == 429 else None))
        self.retry_after = None
        super().record(
            endpoint, latency_s, status=status, error_kind=error_kind, message=message, at=at
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
        await _closed(ctx, outcome, reqs, concurrency=concurrency, requests=n, recorder=recorder)
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


# 5. database pool stress --------------------------------------------------------------------------


def pool_timeouts(samples: list[dict]) -> int | None:
    """How much the pool's time-out counter grew over the samples (None: the server has none)."""
    known = [s["timeouts"] for s in samples if s.get("timeouts") is not None]
    return int(max(known) - known[0]) if known else None


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
        await _closed(ctx, outcome, reqs, concurrency=n, requests=n)
    _judge_pool(ctx, outcome)


def _judge_pool(ctx: Ctx, outcome: Outcome) -> None:
    """Pool time-outs (counter growth, 503s) and any 5xx fail; a full pool alone is saturation."""
    summary = _summary(outcome)
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
            _cycle(reqs),
            rate=rate,
            duration_s=duration + warmup,
            recorder=recorder,
            max_in_flight=1000,
            **ctx.run_kw(),
        )
    _finish(outcome, result, started)
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
    reqs = await _session_reads(ctx, accounts)
    await engine.run_closed(ctx.target.url, _cycle(reqs), concurrency=5, requests=warm,
                            recorder=TracingRecorder(), **ctx.run_kw())  # fmt: skip
    outcome.parameters.update(users=10, requests=n, warmup_requests=warm, accounts=len(accounts))
    async with monitored(ctx, outcome, interval_s=0.1):
        await _closed(ctx, outcome, reqs, concurrency=10, requests=n)
    _judge_memory(ctx, outcome)


def _judge_memory(ctx: Ctx, outcome: Outcome) -> None:
    growth = (outcome.resources or {}).get("memory_growth_mb")
    outcome.thresholds += slo.check(_summary(outcome), {"error_rate_percent": 1.0})
    if growth is None:
        reason = (outcome.resources or {}).get("unavailable_reason", "server memory not measured")
        outcome.skip_reason = f"memory growth not asserted: {reason}"
        return
    outcome.thresholds += slo.check({"memory_growth_mb": growth}, ctx.profile.limits("memory"))


# baseline (no auth) -------------------------------------------------------------------------------


async def sequential_health(ctx: Ctx, outcome: Outcome) -> None:
    """``baseline.sequential_health`` GET /health one after another."""
    n = int(ctx.profile.scenario("baseline")["sequential_health"])
    outcome.parameters.update(users=1, requests=n)
    req = Request("GET", api.HEALTH, api.endpoint("GET", api.HEALTH))
    await _sequential(ctx, outcome, [req], n)


async def endpoint_latency(ctx: Ctx, outcome: Outcome) -> None:
    """Latency of /, /health, /ready and /live, ``baseline.sequential_health`` times each."""
    n = int(ctx.profile.scenario("baseline")["sequential_health"])
    routes = (api.ROOT, api.HEALTH, api.READY, api.LIVE)
    reqs = [Request("GET", r, api.endpoint("GET", r)) for r in routes]
    outcome.parameters.update(users=1, requests=n * len(reqs), endpoints=list(routes))
    await _sequential(ctx, outcome, reqs, n * len(reqs))


async def _sequential(ctx: Ctx, outcome: Outcome, reqs: list[Request], n: int) -> None:
    async with monitored(ctx, outcome):
        await _closed(ctx, outcome, reqs, concurrency=1, requests=n)
    check_read_limits(outcome, ctx.profile)


async def connection_stability(ctx: Ctx, outcome: Outcome) -> None:
    """``baseline.stability_requests`` sequential requests: no errors, one kept-alive connection."""
    n = int(ctx.profile.scenario("baseline")["stability_requests"])
    outcome.parameters.update(users=1, requests=n)
    routes = itertools.cycle((api.HEALTH, api.LIVE, api.ROOT, api.READY))
    client = ctx.client()
    opened = 0
    conn = None
    async with monitored(ctx, outcome):
        started = time.time()
        for _ in range(n):
            route = next(routes)
            if conn is None or not conn.reusable:
                conn, opened = await _reconnect(client, conn, outcome, route), opened + 1
            conn = await _one_on(client, conn, route, outcome, ctx.target.timeout_s)
        if conn is not None:
            conn.close()
        outcome.duration_s = time.time() - started
    outcome.extra["connections_opened"] = opened
    check_read_limits(outcome, ctx.profile)
    outcome.thresholds += slo.check(_summary(outcome), {"error_rate_percent": 0})
    outcome.thresholds += slo.check({"connections_opened": opened}, {"connections_opened": 1})


async def _reconnect(client: HttpClient, old, outcome: Outcome, route: str):
    if old is not None:
        old.close()
    try:
        return await client.connect()
    except (OSError, TimeoutError) as exc:
        outcome.recorder.record(api.endpoint("GET", route), None, message=str(exc))
        return None


async def _one_on(client: HttpClient, conn, route: str, outcome: Outcome, timeout_s: float):
    """One GET on ``conn``, recorded; returns the connection (None when it broke)."""
    if conn is None:
        return None
    at, t = time.time(), time.perf_counter()
    req = Request("GET", client.prefix + route, api.endpoint("GET", route))
    try:
        await conn.exchange(req, client.host_block, timeout_s)
    except (OSError, TimeoutError) as exc:
        kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
        outcome.recorder.record(req.endpoint, None, error_kind=kind, message=str(exc), at=at)
        return None
    kind = None if conn.status == 200 else ("http_5xx" if conn.status >= 500 else "http_4xx")
    outcome.recorder.record(req.endpoint, time.perf_counter() - t, status=conn.status,
                            error_kind=kind, message=str(conn.status), at=at)  # fmt: skip
    return conn


# defect probes (loadkit.probes; sent by loadkit.probe_driver) -------------------------------------


def _probe_sizes(ctx: Ctx) -> dict:
    return ctx.profile.scenario("probes")


def _send_kw(ctx: Ctx) -> dict[str, Any]:
    return {"timeout_s": ctx.target.timeout_s}


def _start_clock(outcome: Outcome) -> float:
    """Fix the recorder's origin before concurrent requests record out of start order."""
    outcome.recorder.start()
    return time.time()


async def _victim(ctx: Ctx, account: api.Account, outcome: Outcome) -> probes.Victim:
    """The account's patient and one of that patient's sessions (a made-up id when it has none)."""
    headers = await ctx.auth.headers(account)
    patient = await ctx.auth.patient_id(account)
    path = f"{api.SESSIONS}?patient_id={patient}&limit=1"
    listed = await probe_driver.get_json(
        ctx.auth.client, outcome.recorder, path, headers, **_send_kw(ctx)
    )
    ids = [s["id"] for s in listed or [] if isinstance(s, dict) and "id" in s]
    if not ids:
        outcome.extra["access_probe_note"] = "the victim has no session: a made-up id is probed"
    return probes.Victim(patient, str(ids[0]) if ids else str(uuid.uuid4()), headers)


async def _background_load(ctx: Ctx, outcome: Outcome, reads, stop: asyncio.Event) -> None:
    """The realistic load: session reads of general accounts until ``stop`` (bounded)."""
    sizes = _probe_sizes(ctx)
    n, seconds = int(sizes["load_concurrency"]), float(sizes["load_max_s"])
    await engine.run_closed(
        ctx.target.url,
        _cycle(reads),
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
    reqs = probes.access_requests(victim, await ctx.auth.headers(intruder)) * rounds
    left_out = ctx.claim_uploads(sum(p.endpoint == UPLOAD for p in reqs))
    if left_out:  # the address's upload budget is for other tests: probe the reads alone
        reqs = [p for p in reqs if p.endpoint != UPLOAD]
        outcome.extra["access_probe_note"] = f"uploads left out: {left_out}"
    client, kw = ctx.auth.client, _send_kw(ctx)
    before = await probe_driver.session_count(
        client, outcome.recorder, victim.headers, victim.patient_id, **kw
    )
    reads = await _session_reads(ctx, await ctx.accounts(int(_probe_sizes(ctx)["load_requests"])))
    outcome.parameters.update(probe_requests=len(reqs), rounds=rounds)
    stop, found = asyncio.Event(), []
    async with monitored(ctx, outcome):
        started = _start_clock(outcome)
        load = asyncio.ensure_future(_background_load(ctx, outcome, reads, stop))
        for p in reqs:
            judge = lambda s, b, p=p: probes.judge_access(p, s, b)  # noqa: E731
            reply = await probe_driver.send(client, outcome.recorder, p, judge=judge, **kw)
            message = judge(reply.status, reply.body)
            if message:
                found.append(message)
                defects.from_access(outcome.defects, p.label, p.endpoint, reply.status)
        stop.set()
        await load
        outcome.duration_s = time.time() - started
    after = await probe_driver.session_count(
        client, outcome.recorder, victim.headers, victim.patient_id, **kw
    )
    _judge_access(outcome, reqs, found, before, after)


def _judge_access(outcome: Outcome, reqs, defects: list[str], before, after) -> None:
    distinct = list(dict.fromkeys(defects))
    outcome.problems += distinct[:10]
    if len(distinct) > 10:
        outcome.problems.append(f"... and {len(distinct) - 10} more access-control defects")
    moved = probes.session_count_problem(before, after, 0)
    if moved:
        outcome.problems.append(moved.replace("upload-trust", "access-control"))
    outcome.extra["access_probe"] = {
        "requests": len(reqs),
        "defects": len(defects),
        "sessions_before": before,
        "sessions_after": after,
    }
    outcome.thresholds += slo.check({"access_defects": len(defects)}, {"access_defects": 0})


async def limiter_semantics_probe(ctx: Ctx, outcome: Outcome, route_name: str) -> None:
    """One limited route past its limit: it holds, 429 + Retry-After, refusals change nothing."""
    sizes = ctx.profile.scenario("probes")
    route = probes.with_limit(
        probes.LIMITED_ROUTES[route_name],
        sizes.get(f"{route_name}_limit"),
        sizes.get(f"{route_name}_window_s"),
    )
    account = ctx.plan.probe_account(route_name) if route_name in PROBE_ACCOUNTS else None
    if route_name in PROBE_ACCOUNTS and account is None:
        outcome.skip_reason = _too_few(ctx, "the limiter probe")
        return
    outcome.parameters.update(route=route.endpoint, limit=route.limit, window_s=route.window_s)
    if route_name == "login":
        await _clear_login_window(ctx, outcome, "the login limit probe")
    if route_name in ("upload", "extract"):
        outcome.skip_reason = ctx.claim_uploads(
            route.limit + route.extra if route_name == "upload" else 1
        )
        if outcome.skip_reason:
            return
    async with monitored(ctx, outcome):
        started = _start_clock(outcome)
        replies, state = await _LIMIT_RUNS[route_name](ctx, outcome, route, account)
        outcome.duration_s = time.time() - started
    if route_name == "login":
        ctx.plan.manager.budget.note_sent(len(replies) + 1)
    rows, problems = probes.judge_limit(route, [r.probe() for r in replies])
    outcome.thresholds += rows
    outcome.problems += problems + [p for p in state if p]
    _limit_defects(outcome, route, route_name, replies, state)
    outcome.extra["limit_probe"] = {
        "route": route.endpoint,
        "keyed_by": route.keyed_by,
        "let_through": sum(r.status in route.counted for r in replies),
        "refused_429": sum(r.status == 429 for r in replies),
    }


MAX_LOGIN_WAIT_S = 120.0


def _limit_defects(outcome: Outcome, route, name: str, replies: list, state: list) -> None:
    statuses: dict[str, int] = {}
    for r in replies:
        if r.status is not None and r.status not in route.counted:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    refusals = [r for r in replies if r.status == 429]
    bare = sum(not (r.headers.get("retry-after") or "").strip().isdigit() for r in refusals)
    defects.from_limit(outcome.defects, route.endpoint, name=name, statuses=statuses,
                       refused=len(refusals), bare=bare, total=len(replies))  # fmt: skip
    if any(s and "keyed by address alone" in s for s in state):
        said = "the login limit is keyed by client address alone, not (address, email)"
        defects.add(outcome.defects, "login-limit-by-address", route.endpoint, said)


async def _clear_login_window(ctx: Ctx, outcome: Outcome, what: str) -> None:
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


def _no_token_in_429s(replies: list, what: str) -> str | None:
    leaky = [r for r in replies if r.status == 429 and probes.token_in_body(r.body)]
    return f"a refused {what} handed out a token ({len(leaky)} times)" if leaky else None


async def _limit_default(ctx: Ctx, outcome: Outcome, route, account):
    headers = await ctx.auth.headers(account)
    p = probes.ProbeRequest(
        route.endpoint, "GET", api.SESSIONS, route.endpoint, route.counted | {429}, headers
    )
    replies = await probe_driver.sequence(
        ctx.auth.client,
        outcome.recorder,
        [p] * (route.limit + route.extra),
        concurrency=4,
        **_send_kw(ctx),
    )
    return replies, []


async def _limit_login(ctx: Ctx, outcome: Outcome, route, _account):
    email = probes.probe_email()
    reqs = [probes.wrong_login(email)] * (route.limit + route.extra)
    client, kw = ctx.auth.client, _send_kw(ctx)
    replies = await probe_driver.sequence(client, outcome.recorder, reqs, **kw)
    other = await probe_driver.send(
        client, outcome.recorder, probes.wrong_login(probes.probe_email()), **kw
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
    client, kw = ctx.auth.client, _send_kw(ctx)
    reqs = [probes.json_request("POST", api.SIGNUP, b, route.counted | {429}) for b in payloads]
    replies = await probe_driver.sequence(client, outcome.recorder, reqs, **kw)
    refused = [b for b, r in zip(payloads, replies, strict=True) if r.status == 429]
    state = [_no_token_in_429s(replies, "signup")]
    if refused:
        body = {"email": refused[-1]["email"], "password": refused[-1]["password"]}
        login = probes.json_request("POST", api.LOGIN, body, {401, 429})
        got = await probe_driver.send(client, outcome.recorder, login, **kw)
        if got.status == 200:
            state.append("a refused signup created its account anyway: its login succeeded")
    return replies, state


async def _limit_refresh(ctx: Ctx, outcome: Outcome, route, account):
    """The account's token from the manager (no login spent); the rotated token goes back."""
    client, kw = ctx.auth.client, _send_kw(ctx)
    held = await ctx.auth.token(account)
    if not held.refresh_token:
        return [], ["the refresh probe's account has no refresh token"]
    token, latest, replies = held.refresh_token, None, []
    for _ in range(route.limit + route.extra):
        p = probes.json_request("POST", api.REFRESH, {"refresh_token": token}, {200, 429})
        reply = await probe_driver.send(client, outcome.recorder, p, **kw)
        replies.append(reply)
        if reply.status == 200:
            with contextlib.suppress(ValueError):
                latest = api.parse_token_response(json.loads(reply.body), time.time())
                token = latest.refresh_token or token
    if latest is not None:  # the old refresh token is spent: keep the newest pair
        ctx.plan.manager.store.put(account.email, latest)
    return replies, [_no_token_in_429s(replies, "refresh")]


async def _limit_upload(ctx: Ctx, outcome: Outcome, route, account):
    client, kw = ctx.auth.client, _send_kw(ctx)
    headers, patient = await ctx.auth.headers(account), await ctx.auth.patient_id(account)
    before = await probe_driver.session_count(client, outcome.recorder, headers, patient, **kw)
    case = probes.upload_cases(4096, valid=1)[0]
    reqs = [
        dataclasses.replace(
            probes.upload_request(case, patient, headers), expect=route.counted | {429}
        )
    ] * (route.limit + route.extra)
    replies = await probe_driver.sequence(client, outcome.recorder, reqs, **kw)
    after = await probe_driver.session_count(client, outcome.recorder, headers, patient, **kw)
    allowed = sum(r.status == 200 for r in replies)
    expected = None if before is None else before + allowed
    return replies, [probes.unchanged("the patient's session count", before, after, expected)]


async def _limit_extract(ctx: Ctx, outcome: Outcome, route, account):
    client, kw = ctx.auth.client, _send_kw(ctx)
    headers = await ctx.auth.headers(account)
    sid = await _transcribed_session(ctx, outcome, account)
    if sid is None:
        return [], ["the extract-notes probe found no transcribed session of its account"]
    path = api.path(api.SESSION_EXTRACT_NOTES, id=sid)
    p = probes.ProbeRequest(
        route.endpoint, "POST", path, route.endpoint, route.counted | {429}, headers
    )
    replies = await probe_driver.sequence(
        client, outcome.recorder, [p] * (route.limit + route.extra), **kw
    )
    one = await probe_driver.get_json(
        client, outcome.recorder, api.path(api.SESSION, id=sid), headers, **kw
    )
    replies.append(await probe_driver.send(client, outcome.recorder, p, **kw))
    two = await probe_driver.get_json(
        client, outcome.recorder, api.path(api.SESSION, id=sid), headers, **kw
    )
    stamp = [(s or {}).get("updated_at") for s in (one, two)]
    changed = replies[-1].status == 429 and stamp[0] != stamp[1]
    return replies, [
        "a refused extract-notes changed the session's updated_at" if changed else None
    ]


async def _transcribed_session(ctx: Ctx, outcome: Outcome, account: api.Account) -> str | None:
    """A session of the account that has a transcript (one upload, polled; bounded)."""
    client, kw = ctx.auth.client, _send_kw(ctx)
    headers, patient = await ctx.auth.headers(account), await ctx.auth.patient_id(account)
    for s in (
        await probe_driver.get_json(
            client, outcome.recorder, f"{api.SESSIONS}?limit=50", headers, **kw
        )
        or []
    ):
        if s.get("status") in ("transcribed", "processed"):
            return str(s["id"])
    case = probes.upload_cases(4096, valid=1)[0]
    up = await probe_driver.send(
        client, outcome.recorder, probes.upload_request(case, patient, headers), **kw
    )
    ids = probes.response_ids(up.body) if up.status == 200 else []
    if not ids:
        return None
    final = await _poll_until_processed(ctx, [(ids[0], headers)], 60.0)
    return ids[0] if final.get(ids[0]) == "processed" else None


def _too_few(ctx: Ctx, who: str) -> str:
    from loadkit.accounts import MIN_GENERAL, RESERVED

    need = RESERVED + len(PROBE_ACCOUNTS) + MIN_GENERAL
    return (
        f"too few accounts to give {who} one of its own: it needs {need} accounts in all, "
        f"there are {ctx.plan.roles.describe()}"
    )


_LIMIT_RUNS = {
    "default": _limit_default,
    "login": _limit_login,
    "signup": _limit_signup,
    "refresh": _limit_refresh,
    "upload": _limit_upload,
    "extract": _limit_extract,
}


async def upload_trust_probe(ctx: Ctx, outcome: Outcome) -> None:
    """Non-audio, wrong-type, empty and oversized uploads beside valid ones: refused, no trace."""
    account = ctx.plan.probe_account("upload_trust")
    if account is None:
        outcome.skip_reason = _too_few(ctx, "the upload-trust probe")
        return
    sizes, client, kw = _probe_sizes(ctx), ctx.auth.client, _send_kw(ctx)
    headers, patient = await ctx.auth.headers(account), await ctx.auth.patient_id(account)
    cases = probes.upload_cases(int(sizes["upload_size_bytes"]))
    outcome.skip_reason = ctx.claim_uploads(len(cases) + 1)
    if outcome.skip_reason:
        return
    before = await probe_driver.session_count(client, outcome.recorder, headers, patient, **kw)
    outcome.parameters.update(uploads=len(cases) + 1, max_upload_bytes=sizes["max_upload_bytes"])
    async with monitored(ctx, outcome):
        started = _start_clock(outcome)
        replies = await asyncio.gather(
            *(
                probe_driver.send(
                    client,
                    outcome.recorder,
                    probes.upload_request(c, patient, headers),
                    judge=lambda s, b, c=c: probes.judge_upload(c.label, c.expect, s, b),
                    **kw,
                )
                for c in cases
            )
        )
        big = await probe_driver.oversized_upload(
            client,
            outcome.recorder,
            api.upload_path(patient),
            headers,
            declared=int(sizes["max_upload_bytes"]) + 1,
            time_s=float(sizes["oversize_stream_s"]),
            **kw,
        )
        outcome.duration_s = time.time() - started
    after = await probe_driver.session_count(client, outcome.recorder, headers, patient, **kw)
    _judge_upload_trust(outcome, cases, replies, big, before, after)


def _judge_upload_trust(outcome: Outcome, cases, replies, big, before, after) -> None:
    if any(r.status == 429 for r in replies) or big[0] == 429:
        outcome.skip_reason = "the probe account's upload limit (10/hour) is spent: rerun later"
        return
    if all(r.status is not None and r.status >= 500 for r in replies):
        got = ", ".join(sorted({str(r.status) for r in replies}))
        outcome.skip_reason = (
            f"every upload of the probe was refused ({got}): the upload limit of this address is "
            "spent (its limiter answers 5xx); rerun after its window"
        )
        return
    outcome.problems += [
        m
        for c, r in zip(cases, replies, strict=True)
        if (m := probes.judge_upload(c.label, c.expect, r.status, r.body))
    ]
    for c, r in zip(cases, replies, strict=True):
        if probes.judge_upload(c.label, c.expect, r.status, r.body):
            defects.from_upload(outcome.defects, c.label, r.status)
    status, sent = big
    if status != 413:
        got = "no answer" if status is None else f"{status}"
        outcome.problems.append(f"upload-trust defect: an oversized body got {got}, expected 413")
        defects.add(outcome.defects, "oversize-not-refused", UPLOAD,
                    f"an oversized body got {got}, expected 413", status=status)  # fmt: skip
    accepted = sum(r.status == 200 for r in replies) + (status == 200)
    left = probes.session_count_problem(before, after, accepted)
    outcome.problems += [left] if left else []
    if left and after is not None and before is not None:
        defects.add(outcome.defects, "refused-upload-leaves-session", UPLOAD, left,
                    sessions_before=before, sessions_after=after, accepted=accepted)  # fmt: skip
    outcome.extra["upload_probe"] = {
        "sessions_before": before,
        "sessions_after": after,
        "accepted": accepted,
        "oversize_bytes_sent": sent,
    }
    outcome.thresholds += slo.check(
        {"upload_trust_defects": len(outcome.problems)}, {"upload_trust_defects": 0}
    )


async def event_loop_probe(ctx: Ctx, outcome: Outcome) -> None:
    """Uploads and logins at once: the /live canary's p99 stays near its idle value."""
    sizes = ctx.profile.scenario("event_loop")
    settings = canary.Settings.from_profile(ctx.profile)
    n_up, n_login = int(sizes["uploads"]), int(sizes["logins"])
    outcome.skip_reason = ctx.claim_uploads(n_up)
    if outcome.skip_reason:
        return
    accounts = await ctx.take(n_up)
    uploads = await _upload_requests(ctx, accounts, int(sizes["upload_size_bytes"]), [])
    logins = [_bad_login() for _ in range(n_login)]
    await _clear_login_window(ctx, outcome, "the event-loop probe's wrong logins")
    idle = await asyncio.to_thread(
        canary.measure_idle, ctx.target.url, settings, verify=ctx.target.verify
    )
    outcome.parameters.update(uploads=n_up, logins=n_login, canary_rate=settings.rate)
    live = canary.Canary(ctx.target.url, settings, verify=ctx.target.verify).start()
    async with monitored(ctx, outcome):
        await _closed(
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
    p = probes.wrong_login(probes.probe_email())
    return Request(p.method, p.path, p.endpoint, p.headers, p.body, expect=401)
