"""The pytest scenarios' harness: context, account and upload demand, the run on the
engine's loop with the canary, monitors and cost beside it, and shared request helpers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from loadkit.contract import api
from loadkit.contract.accounts import SeedEnd
from loadkit.contract.upload_budget import UploadLedger
from loadkit.measure import engine, recording
from loadkit.measure.http import HttpClient, Request
from loadkit.measure.trace import TracingRecorder
from loadkit.suite import live_watch
from loadkit.suite.outcome import Outcome
from loadkit.suite.session import (
    AccountPlan,
    AccountsUnusable,
    Authenticator,
    SetupError,
    accounts_needed,
    fetch,
    setup_fetch,
    with_seed_fallback,
)
from loadkit.verdicts import cost, pool_visibility, slo
from loadkit.verdicts.rate_limit import LimitProbe
from loadkit.watch import canary, monitor
from loadkit.watch.pool import PoolMonitor
from loadkit.watch.targeting import Target

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
    live_watch.watch(outcome=outcome, canary=live and live[0])
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
            pool_visibility.judge(outcome.db_pool, outcome.server_series, outcome.summary(), users),
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
    pools = PoolMonitor(ctx.target.url, interval_s=POOL_SAMPLE_S) if pool else None
    await asyncio.to_thread(server.start)
    if pools is not None:
        await asyncio.to_thread(pools.start)
    live_watch.watch(server=server, pool=pools)
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


def finish_run(outcome: Outcome, result: engine.RunResult, started: float) -> None:
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


async def closed_run(
    ctx: Ctx,
    outcome: Outcome,
    reqs: list[Request],
    *,
    concurrency: int,
    requests: int,
    recorder: recording.RunRecorder | None = None,
) -> engine.RunResult:
    """Run ``requests`` of ``reqs`` (in turn) on ``concurrency`` workers, timed into the outcome."""
    started = time.time()
    result = await engine.run_closed(
        ctx.target.url,
        in_turn(reqs),
        concurrency=concurrency,
        requests=requests,
        recorder=outcome.recorder if recorder is None else recorder,
        **ctx.run_kw(),
    )
    finish_run(outcome, result, started)
    return result


def check_read_limits(outcome: Outcome, profile: slo.Profile, group: str = "read") -> None:
    """Add the profile's limits of ``group`` against this run's summary."""
    outcome.thresholds += slo.check(outcome.summary(), profile.limits(group))


def _json_list(body: bytes) -> list:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def in_turn(requests: list[Request]):
    """A factory handing out ``requests`` in turn."""
    return lambda i: requests[i % len(requests)]


# 2. concurrent authenticated session reads --------------------------------------------------------


async def session_reads(ctx: Ctx, accounts: list[api.Account]) -> list[Request]:
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


async def upload_requests(ctx: Ctx, accounts, size: int, owned: list) -> list[Request]:
    """One multipart upload of real WAV bytes per account (to one of its patients)."""
    uploads = []
    for i, account in enumerate(accounts):
        headers = await ctx.auth.headers(account)
        patient = await ctx.auth.patient_id(account)
        file = (f"loadtest-{i:03d}.wav", api.wav_bytes(size, seed=i), api.UPLOAD_CONTENT_TYPE)
        uploads.append(
            upload_request(patient, file, headers, check=_session_id_catcher(owned, headers))
        )
    return uploads


def upload_request(patient: str, file: tuple[str, bytes, str], headers: dict, **kw) -> Request:
    """A multipart upload of ``file`` (name, bytes, type) for ``patient``, named by the route."""
    return Request.multipart("POST", api.upload_path(patient), files={api.UPLOAD_FIELD: file},
                             endpoint=UPLOAD, headers=headers, **kw)  # fmt: skip


async def poll_until_processed(
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


# 5. database pool stress --------------------------------------------------------------------------


def pool_timeouts(samples: list[dict]) -> int | None:
    """How much the pool's time-out counter grew over the samples (None: the server has none)."""
    known = [s["timeouts"] for s in samples if s.get("timeouts") is not None]
    return int(max(known) - known[0]) if known else None
