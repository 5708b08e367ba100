"""Async load engine: closed model (N workers, K requests or T seconds), open model (arrival rate).

Client, chosen by measurement: generator pinned to core 0, nginx serving a 3-byte 200 on core 1, a
closed loop of GETs (`bench/engine_bench.py`; `bench/README.md` holds the full table and command)::

    client (one core)                          50 in flight   5,000 in flight
    httpx.AsyncClient 0.28.1, shared (#3)          333/s      collapses past 1,000
    aiohttp 3.14.5 ClientSession + uvloop       19,857/s       4,488/s (collapses)
    asyncio.Protocol + httptools + uvloop      138,937/s      67,930/s (bare loop)
    this engine (the above + RunRecorder)       95,817/s      48,675/s
    Locust FastHttpUser (#3)                     7,780/s
    wrk -t1 (ceiling)                          150,760/s      76,575/s

aiohttp fails the 5,000-in-flight requirement and is 5-7x slower at 50, so the engine drives its own
lean HTTP/1.1 client, `loadkit.measure.http`: keep-alive connections owned by workers (connection
limit = concurrency, no pool search per request), one serialised head per `Request`, and httptools
(llhttp, the parser uvicorn uses) for status, chunked bodies and keep-alive rules. `run()` uses
uvloop when installed (the bare client on the stock loop: 43,799/s at 50). The drop at 5,000 is the
kernel's and nginx's as much as ours: wrk loses as much.

Measuring: latency runs from just before a request is sent (closed model; connecting included when a
connection must be opened) or from its INTENDED start (open model: coordinated-omission correction)
to the last body byte. A failed request is data: connection refused or reset -> "connection",
time-out -> "timeout" (no latency for either), unexpected status -> `metrics.classify`, a failed
check -> "check". Every run is bounded: count and/or time, then at most `drain_s` for requests in
flight at the deadline (the rest are abandoned and counted). A `stop` event ends a run early with
``interrupted=True``; cancelling the task closes every connection and re-raises, and the caller's
recorder keeps everything gathered until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loadkit.measure.http import Connection, ConnectionPool, HttpClient, Request
from loadkit.measure.recording import RunRecorder, classify
from loadkit.report.redaction import redact

Factory = Callable[[int], "Request | Awaitable[Request]"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run did: its length, whether it was stopped early, and its counts."""

    model: str
    duration_s: float
    interrupted: bool
    sent: int
    completed: int
    errors: int
    late_starts: int = 0
    unsent: int = 0
    abandoned: int = 0

    @property
    def requests_per_second(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0


def raise_open_file_limit(wanted: int = 65_536) -> int:
    """Raise RLIMIT_NOFILE towards ``wanted`` (up to the hard limit, or beyond it as root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    for target in (wanted, min(wanted, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            return target
        except (ValueError, OSError):
            continue
    return soft


class _Run:
    """State shared by the workers of one run: client, recorder, counters, clocks, bounds."""

    def __init__(self, target: str, factory: Factory, recorder: RunRecorder, opts: dict) -> None:
        self.client = HttpClient(
            target, connect_timeout_s=opts["connect_timeout_s"], verify=opts["verify"]
        )
        self.host_block = self.client.host_block
        self.factory = _prefixed(factory, self.client.prefix) if self.client.prefix else factory
        self.connect = self.client.connect
        self.recorder = recorder
        self.timeout_s = opts["timeout_s"]
        self.stop = opts["stop"] or asyncio.Event()
        self.sent = self.completed = self.errors = self.seq = 0
        self.t0 = time.perf_counter()
        self.wall0 = time.time()
        if recorder.t0 is None:
            recorder.start(self.wall0)

    async def exchange(
        self, conn: Connection | None, req: Request, started: float, at: float
    ) -> Connection | None:
        """Send one request on ``conn`` (a new one if None) and record it.

        Returns the connection used (check ``reusable``), or None when none could be opened."""
        self.sent += 1
        try:
            if conn is None:
                conn = await self.connect()
            body = await conn.exchange(req, self.host_block, self.timeout_s)
        except (OSError, TimeoutError) as exc:  # ConnectionError, ProtocolError, ssl errors
            self._record_failure(req, exc, at)
            return conn
        latency = time.perf_counter() - started
        status = conn.status
        kind = classify(status, req.expect)
        message = ""
        if kind is not None:
            message = redact(f"{status} {body[:200].decode('utf-8', 'replace')}")
        else:
            message = _run_checks(req, status, body, conn.headers)
            kind = "check" if message else None
        self.completed += 1
        self.errors += kind is not None
        self.recorder.record(
            req.endpoint, latency, status=status, error_kind=kind, message=message, at=at
        )
        return conn

    def _record_failure(self, req: Request, exc: BaseException, at: float) -> None:
        kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
        message = redact(f"{type(exc).__name__}: {exc}")[:200]
        self.completed += 1
        self.errors += 1
        self.recorder.record(req.endpoint, None, error_kind=kind, message=message, at=at)

    def wall(self, perf: float) -> float:
        return self.wall0 + (perf - self.t0)


def _run_checks(req: Request, status: int, body: bytes, headers: dict | None) -> str:
    """The first failed check's message ("" when all pass); a check that raises fails."""
    for check, arg in ((req.check, body), (req.header_check, headers or {})):
        if check is None:
            continue
        try:
            message = check(status, arg)  # type: ignore[arg-type]
        except Exception as exc:  # a scenario's check must not end the run
            message = f"check raised {type(exc).__name__}: {exc}"
        if message:
            return redact(str(message))[:200]
    return ""


def _prefixed(factory: Factory, prefix: str) -> Factory:
    """Wrap a factory so every request's path starts with the target URL's path prefix."""

    async def wrapped(i: int) -> Request:
        req = factory(i)
        req = req if isinstance(req, Request) else await req
        fields = (req.endpoint, req.headers, req.body, req.expect, req.check, req.header_check)
        return Request(req.method, prefix + req.path, *fields)

    return wrapped


async def _closed_worker(run: _Run, limit: int | None, deadline: float) -> None:
    """Send requests back to back on one connection until the count, the deadline or a stop."""
    conn: Connection | None = None
    perf, factory = time.perf_counter, run.factory
    try:
        while not run.stop.is_set() and (limit is None or run.seq < limit) and perf() < deadline:
            i = run.seq
            run.seq += 1
            req = factory(i)
            if not isinstance(req, Request):
                req = await req
            started = perf()
            conn = await run.exchange(conn, req, started, run.wall(started))
            if conn is not None and not conn.reusable:
                conn.close()
                conn = None
    finally:
        if conn is not None:
            conn.close()


async def run_closed(
    target: str,
    factory: Factory,
    *,
    concurrency: int,
    recorder: RunRecorder,
    requests: int | None = None,
    duration_s: float | None = None,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 10.0,
    verify: bool | str = True,
    drain_s: float = 1.0,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Closed model: ``concurrency`` workers, one request at a time each, until ``requests`` are
    sent or ``duration_s`` has passed, whichever comes first (at least one bound is required).

    ``timeout_s`` bounds each response (send to last byte), ``connect_timeout_s`` each connect;
    ``verify`` is True (system CAs), False, or a CA bundle path."""
    if requests is None and duration_s is None:
        raise ValueError("run_closed needs requests= or duration_s= (or both)")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    raise_open_file_limit(concurrency + 1024)
    opts = dict(timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, verify=verify, stop=stop)
    run = _Run(target, factory, recorder, opts)
    deadline = run.t0 + duration_s if duration_s is not None else float("inf")
    workers = [
        asyncio.ensure_future(_closed_worker(run, requests, deadline)) for _ in range(concurrency)
    ]
    abandoned = await _supervise(run, workers, deadline, drain_s)
    return _result(run, "closed", abandoned=abandoned)


async def _supervise(run: _Run, tasks: list[asyncio.Future], deadline: float, drain: float) -> int:
    """Wait for ``tasks`` until the deadline (plus drain) or a stop; cancel the rest; count them."""
    stopper = asyncio.ensure_future(run.stop.wait())
    try:
        pending = set(tasks)
        while pending and not run.stop.is_set():
            left = deadline + drain - time.perf_counter()
            if left <= 0:
                break
            _, pending = await asyncio.wait(
                pending | {stopper}, timeout=min(left, 3600), return_when="FIRST_COMPLETED"
            )
            pending.discard(stopper)
        abandoned = sum(not t.done() for t in tasks)
        return abandoned
    finally:
        stopper.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _result(run: _Run, model: str, **counts: int) -> RunResult:
    return RunResult(
        model=model,
        duration_s=time.perf_counter() - run.t0,
        interrupted=run.stop.is_set(),
        sent=run.sent,
        completed=run.completed,
        errors=run.errors,
        **counts,
    )


class _OpenRun(_Run):
    """Open-model state: the connection pool, the in-flight bound and late-start accounting."""

    def __init__(self, target: str, factory: Factory, recorder: RunRecorder, opts: dict) -> None:
        super().__init__(target, factory, recorder, opts)
        self.pool = ConnectionPool(self.client)
        self.connect = self.pool.acquire
        self.max_in_flight = opts["max_in_flight"]
        self.tolerance = opts["late_tolerance_s"]
        self.in_flight = 0
        self.late = 0
        self.slot_freed: asyncio.Future | None = None
        self.tasks: set[asyncio.Task] = set()

    async def one(self, i: int, intended: float) -> None:
        """One request meant to start at ``intended`` (perf clock), timed from then."""
        try:
            req = self.factory(i)
            if not isinstance(req, Request):
                req = await req
            if time.perf_counter() - intended > self.tolerance:
                self.late += 1
                self.recorder.record_late_start()
            conn = await self.exchange(None, req, intended, self.wall(intended))
            if conn is not None:
                self.pool.release(conn)
        finally:
            self.in_flight -= 1
            waiter = self.slot_freed
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def wait_for_slot(self, deadline: float) -> None:
        """Wait while ``max_in_flight`` requests are out (until the deadline or a stop)."""
        while self.in_flight >= self.max_in_flight and not self.stop.is_set():
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self.slot_freed = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.slot_freed, min(left, 0.05))

    def launch(self, i: int, intended: float) -> None:
        self.in_flight += 1
        task = asyncio.ensure_future(self.one(i, intended))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def arrival_offsets(rate: float, duration_s: float, *, poisson: bool = False, seed: int = 0):
    """Intended start offsets (s from t0) below ``duration_s``: i/rate, or seeded Poisson."""
    rng = random.Random(seed)
    i, t = 0, 0.0
    while t < duration_s:
        yield t
        i += 1
        t = t + rng.expovariate(rate) if poisson else i / rate


async def _schedule(run: _OpenRun, offsets, deadline: float) -> int:
    """Launch each request at its intended time; returns how many were never sent (unsent)."""
    perf = time.perf_counter
    for i, offset in enumerate(offsets):
        intended = run.t0 + offset
        while (delay := intended - perf()) > 0.0002 and not run.stop.is_set():
            await asyncio.sleep(min(delay, 0.05))  # timers are ms-grained: see late_tolerance_s
        await run.wait_for_slot(deadline)
        if run.stop.is_set():
            return 0  # interrupted: the rest was not due to start late, it was called off
        if perf() >= deadline:
            return _count_rest(offsets, 1)
        run.launch(i, intended)
        if i % 64 == 63:
            await asyncio.sleep(0)  # let responses in while catching up
    return 0


def _count_rest(offsets, already: int) -> int:
    return already + sum(1 for _ in offsets)


async def run_open(
    target: str,
    factory: Factory,
    *,
    rate: float,
    duration_s: float,
    recorder: RunRecorder,
    max_in_flight: int = 10_000,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 10.0,
    verify: bool | str = True,
    poisson: bool = False,
    seed: int = 0,
    late_tolerance_s: float = 0.002,
    drain_s: float = 1.0,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Open model: requests meant to start at t0 + i/rate (or Poisson arrivals) for ``duration_s``,
    each timed from its intended start.

    A request sent more than ``late_tolerance_s`` after its intended start is a late start (2 ms by
    default: uvloop's timers have millisecond resolution); so is one whose intended start passed
    but that was never sent before the deadline (``unsent``). At ``max_in_flight`` the scheduler
    waits, and that wait shows in the latency of every request behind it."""
    if rate <= 0 or duration_s <= 0 or max_in_flight < 1:
        raise ValueError("rate, duration_s and max_in_flight must be positive")
    raise_open_file_limit(max_in_flight + 1024)
    opts = dict(
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        verify=verify,
        stop=stop,
        max_in_flight=max_in_flight,
        late_tolerance_s=late_tolerance_s,
    )
    run = _OpenRun(target, factory, recorder, opts)
    deadline = run.t0 + duration_s
    try:
        offsets = arrival_offsets(rate, duration_s, poisson=poisson, seed=seed)
        unsent = await _schedule(run, offsets, deadline)
        run.recorder.record_late_start(unsent)
        abandoned = await _supervise(run, list(run.tasks), deadline, drain_s)
    finally:
        for task in list(run.tasks):
            task.cancel()
        run.pool.close()
    return _result(run, "open", late_starts=run.late + unsent, unsent=unsent, abandoned=abandoned)


def run(coro: Awaitable[RunResult]) -> RunResult:
    """Run an engine coroutine to completion on uvloop when available (else the stock loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
