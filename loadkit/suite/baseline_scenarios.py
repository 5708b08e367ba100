"""The no-auth latency baseline: /, /health, /ready, /live one after
another, and connection stability on one kept-alive connection."""

from __future__ import annotations

import itertools
import time

from loadkit.contract import api
from loadkit.measure.http import HttpClient, Request
from loadkit.measure.send import record_answer, record_no_answer
from loadkit.suite.harness import Ctx, check_read_limits, closed_run, monitored
from loadkit.suite.outcome import Outcome
from loadkit.verdicts import slo

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
        await closed_run(ctx, outcome, reqs, concurrency=1, requests=n)
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
    stricter = [t for t in outcome.thresholds if t["metric"] != "error_rate_percent"]
    outcome.thresholds = stricter + slo.check(outcome.summary(), {"error_rate_percent": 0})
    outcome.thresholds += slo.check({"connections_opened": opened}, {"connections_opened": 1})


async def _reconnect(client: HttpClient, old, outcome: Outcome, route: str):
    if old is not None:
        old.close()
    try:
        return await client.connect()
    except (OSError, TimeoutError) as exc:
        record_no_answer(outcome.recorder, api.endpoint("GET", route), exc, at=time.time())
        return None


async def _one_on(client: HttpClient, conn, route: str, outcome: Outcome, timeout_s: float):
    """One GET on ``conn``, recorded; returns the connection (None when it broke)."""
    if conn is None:
        return None
    at, t = time.time(), time.perf_counter()
    req = Request("GET", client.prefix + route, api.endpoint("GET", route))
    try:
        body = await conn.exchange(req, client.host_block, timeout_s)
    except (OSError, TimeoutError) as exc:
        record_no_answer(outcome.recorder, req.endpoint, exc, at=at)
        return None
    latency = time.perf_counter() - t
    record_answer(outcome.recorder, req.endpoint, latency, conn.status, expect=req.expect, at=at,
                  body=body)  # fmt: skip
    return conn
