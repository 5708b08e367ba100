"""Tests of the async load engine against a real aiohttp server on loopback (in a child process)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from aiohttp import web

from loadkit.measure.engine import arrival_offsets, run_closed, run_open
from loadkit.measure.http import Request
from loadkit.measure.recording import RunRecorder
from loadkit.report.redaction import redact

SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"


class Server:
    """A small aiohttp app on a free loopback port, served from a child process (own GIL, so its
    work cannot delay the engine's timers); `stats()` and `reset()` reach its counters over HTTP."""

    def __init__(self) -> None:
        self.active = self.max_active = self.hits = 0
        ctx = multiprocessing.get_context("fork")
        self.ports = ctx.Queue()
        self.process = ctx.Process(target=self._serve, daemon=True)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ok", lambda r: web.Response(text="ok"))
        app.router.add_get("/status/{code}", self.status)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/track", self.track)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/close", self.close)
        app.router.add_get("/stats", self.stats_json)
        return app

    async def stats_json(self, request: web.Request) -> web.Response:
        stats = {"hits": self.hits, "max_active": self.max_active}
        if "reset" in request.query:
            self.active = self.max_active = self.hits = 0
        return web.json_response(stats)

    async def status(self, request: web.Request) -> web.Response:
        body = f'{{"detail": "nope", "access_token": "{SECRET}"}}'
        return web.Response(status=int(request.match_info["code"]), text=body)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("ms", "50")) / 1000)
        return web.Response(text="slow")

    async def track(self, request: web.Request) -> web.Response:
        self.hits += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(0.02)
        self.active -= 1
        return web.Response(text=request.query.get("i", ""))

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"part-one,", b"part-two"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def close(self, request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(self.app(), access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.ports.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        loop.run_forever()

    def stats(self, reset: bool = False) -> dict:
        with urllib.request.urlopen(self.url + "/stats" + ("?reset" if reset else "")) as resp:
            return json.load(resp)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    srv.process.start()
    try:
        srv.port = srv.ports.get(timeout=10)
        yield srv
    finally:
        srv.process.terminate()
        srv.process.join(10)


def fixed(path: str, **kw: object):
    req = Request("GET", path, **kw)
    return lambda i: req


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_closed_model_sends_exactly_k_requests_at_n_concurrent(server: Server) -> None:
    """Closed model: K requests in total, each sequence number once, exactly N at a time at most."""
    server.stats(reset=True)
    seen: list[int] = []

    async def factory(i: int) -> Request:  # an async factory, as a token refresh would need
        seen.append(i)
        return Request("GET", f"/track?i={i}", "GET /track", check=lambda s, b: None)

    rec = RunRecorder()
    result = await run_closed(server.url, factory, concurrency=8, requests=120, recorder=rec)
    assert (result.sent, result.completed, result.errors) == (120, 120, 0)
    stats = server.stats()
    assert rec.total == 120 and stats["hits"] == 120
    assert sorted(seen) == list(range(120))
    assert stats["max_active"] == 8
    assert not result.interrupted


async def test_closed_model_time_bound_stops_on_time(server: Server) -> None:
    """Closed model with only a duration: stops within tolerance of it and counts what it sent."""
    rec = RunRecorder()
    started = time.perf_counter()
    result = await run_closed(server.url, fixed("/ok"), concurrency=4, duration_s=1.0, recorder=rec)
    elapsed = time.perf_counter() - started
    assert 1.0 <= elapsed < 1.8
    assert result.completed == rec.total > 50
    assert result.abandoned == 0


async def test_closed_model_stops_at_whichever_bound_comes_first(server: Server) -> None:
    """Both bounds given: the count ends a run long before its duration."""
    rec = RunRecorder()
    result = await run_closed(
        server.url, fixed("/ok"), concurrency=2, requests=10, duration_s=30, recorder=rec
    )
    assert result.completed == 10 and result.duration_s < 5


async def test_unexpected_status_is_an_error_with_a_redacted_message(server: Server) -> None:
    """A 422 where 200 is expected is http_4xx, a 503 http_5xx; latency kept; tokens redacted."""
    rec = RunRecorder()
    await run_closed(server.url, fixed("/status/422"), concurrency=2, requests=6, recorder=rec)
    await run_closed(server.url, fixed("/status/503"), concurrency=2, requests=4, recorder=rec)
    assert rec.errors_by_kind["http_4xx"] == 6 and rec.errors_by_kind["http_5xx"] == 4
    assert rec.status_codes == {422: 6, 503: 4}
    assert rec.overall.count == 10
    message = rec.errors[0]["message"]
    assert message.startswith("422 ") and "nope" in message and SECRET not in message


async def test_expected_non_200_and_failed_checks(server: Server) -> None:
    """`expect` accepts other statuses; a failing check or header check is kind "check"."""
    rec = RunRecorder()
    accept = fixed("/status/404", expect=frozenset({200, 404}))
    await run_closed(server.url, accept, concurrency=1, requests=3, recorder=rec)
    assert rec.failures == 0
    body_check = fixed("/ok", check=lambda s, b: None if b == b"fine" else f"body {b!r}")
    await run_closed(server.url, body_check, concurrency=1, requests=2, recorder=rec)
    hdr_check = fixed("/ok", header_check=lambda s, h: None if "x-id" in h else "no x-id")
    await run_closed(server.url, hdr_check, concurrency=1, requests=2, recorder=rec)
    assert rec.errors_by_kind["check"] == 4
    assert {e["message"] for e in rec.errors} == {"body b'ok'", "no x-id"}


async def test_chunked_and_connection_close_responses(server: Server) -> None:
    """Chunked bodies are reassembled; a server closing after each response gets new connections."""
    rec = RunRecorder()
    whole = fixed("/chunked", check=lambda s, b: None if b == b"part-one,part-two" else repr(b))
    await run_closed(server.url, whole, concurrency=2, requests=20, recorder=rec)
    await run_closed(server.url, fixed("/close"), concurrency=2, requests=20, recorder=rec)
    assert rec.total == 40 and rec.failures == 0


async def test_connection_refused_is_a_connection_error_without_latency() -> None:
    """Nothing listening: every request is a "connection" error, no latency, no exception."""
    rec = RunRecorder()
    url = f"http://127.0.0.1:{free_port()}"
    result = await run_closed(url, fixed("/ok"), concurrency=3, requests=9, recorder=rec)
    assert result.errors == 9 and rec.errors_by_kind["connection"] == 9
    assert rec.overall.count == 0
    assert "ConnectionRefusedError" in rec.errors[0]["message"]


async def test_slow_response_is_a_timeout_without_latency(server: Server) -> None:
    """A response slower than timeout_s is a "timeout" error with no latency; the run goes on."""
    rec = RunRecorder()
    started = time.perf_counter()
    slow = fixed("/slow?ms=3000")
    result = await run_closed(
        server.url, slow, concurrency=2, requests=4, recorder=rec, timeout_s=0.2
    )
    assert time.perf_counter() - started < 2.0
    assert result.errors == 4 and rec.errors_by_kind["timeout"] == 4
    assert rec.overall.count == 0


async def test_open_model_times_queued_requests_from_their_intended_start(server: Server) -> None:
    """100 req/s on a 50 ms server with max_in_flight 1: latencies grow with the queue, far above
    50 ms, and late starts (including requests never sent) are counted."""
    rec = RunRecorder()
    result = await run_open(
        server.url, fixed("/slow?ms=50"), rate=100, duration_s=1.0, recorder=rec, max_in_flight=1
    )
    assert 10 <= result.completed <= 25
    assert rec.late_starts == result.late_starts >= 80  # ~20 sent, nearly all late, ~80 never sent
    assert result.unsent >= 60
    p50, p_max = rec.overall.percentile(50), rec.overall.max_us
    assert p50 > 200_000 and p_max > 500_000


async def test_open_model_at_a_sustainable_rate_has_no_late_starts(server: Server) -> None:
    """20 req/s on a 50 ms server with room in flight: no late starts, latency ~ service time."""
    rec = RunRecorder()
    result = await run_open(
        server.url,
        fixed("/slow?ms=50"),
        rate=20,
        duration_s=1.0,
        recorder=rec,
        max_in_flight=10,
        late_tolerance_s=0.005,  # the machine is shared: scheduling jitter, not queueing
    )
    assert result.completed == rec.total == 20 and result.unsent == 0
    assert rec.late_starts <= 5  # vs ~100 of 100 when queueing (test above)
    assert 50_000 <= rec.overall.percentile(50) < 150_000


async def test_open_model_poisson_arrivals_are_seeded(server: Server) -> None:
    """Seeded Poisson arrivals plan the same irregular schedule each time, near rate*duration."""
    planned = []
    for _ in range(2):
        rec = RunRecorder()
        result = await run_open(
            server.url, fixed("/ok"), rate=200, duration_s=0.5, recorder=rec, poisson=True, seed=7
        )
        assert result.completed == rec.total
        planned.append(result.sent + result.unsent)
    offsets = list(arrival_offsets(200, 0.5, poisson=True, seed=7))
    gaps = {round(b - a, 6) for a, b in zip(offsets, offsets[1:], strict=False)}
    assert planned[0] == planned[1] == len(offsets) and 60 <= len(offsets) <= 140
    assert len(gaps) > 10  # irregular, unlike i/rate


async def test_cancelling_a_run_stops_promptly_and_keeps_what_was_gathered(server: Server) -> None:
    """Cancelling the run's task ends it at once; the recorder holds the requests done so far."""
    rec = RunRecorder()
    task = asyncio.ensure_future(
        run_closed(server.url, fixed("/slow?ms=20"), concurrency=4, duration_s=60, recorder=rec)
    )
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 0.5
    assert rec.total > 20


async def test_stop_event_ends_a_run_as_interrupted_with_its_counts(server: Server) -> None:
    """Setting `stop` ends closed and open runs early with interrupted=True and their counts."""
    for start in (run_closed, run_open):
        rec, stop = RunRecorder(), asyncio.Event()
        asyncio.get_running_loop().call_later(0.4, stop.set)
        kw = {"concurrency": 2} if start is run_closed else {"rate": 100}
        result = await start(server.url, fixed("/ok"), duration_s=30, recorder=rec, stop=stop, **kw)
        assert result.interrupted and result.duration_s < 1.5
        assert result.completed == rec.total > 0


def test_redact_removes_token_like_strings() -> None:
    """Bearer tokens, JWTs and secrets in JSON never reach an error message."""
    text = f'Bearer {SECRET} {{"password": "hunter2", "token":"abc"}} {SECRET}'
    clean = redact(text)
    assert SECRET not in clean and "hunter2" not in clean and '"abc"' not in clean
