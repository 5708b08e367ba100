"""One search against one target: accounts logged in, the mix prepared, monitors beside the
steps, and Ctrl-C turned into a stop that still ends in a report."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

import psutil

from loadkit.capacity import loop_watch
from loadkit.capacity import run as search_run
from loadkit.capacity.requests import MixFactory, prepare
from loadkit.capacity.search import Plan
from loadkit.capacity.steps import Timing, Watch
from loadkit.measure import engine
from loadkit.measure.http import HttpClient
from loadkit.suite.session import Authenticator, accounts_needed, build_plan, prelogin
from loadkit.watch import monitor
from loadkit.watch import pool as pool_monitor
from loadkit.watch.targeting import Target

SERVER_SAMPLE_S = 0.5
POOL_SAMPLE_S = 1.0
BUNDLED_ACCOUNTS = 8  # the bundled backend's limits are raised: a few accounts do
PLANNED_CEILING_RPS = 200.0  # without --max-rps: enough accounts for this within the limits


@dataclass
class Options:
    """What every search of one run shares."""

    mix: str
    plan: Plan
    timing: Timing
    slo: dict
    budget_s: float
    accounts: str | None = None
    tokens: str | None = None
    login_rate: str | None = None
    default_limit: int = 100
    seed: int = 0
    profile: object = None  # the targets profile (the canary's thresholds)


@dataclass
class Searched:
    """A finished search with what ran beside it."""

    found: search_run.Found
    watch: Watch
    factory: MixFactory
    accounts: int
    server_cores: float


def server_cores(pid: int | None, workers: int | None) -> float:
    """The cores the server can use: its worker count (or its child processes), at most the
    machine's; 1 when unknown."""
    cpus = os.cpu_count() or 1
    if workers is None and pid is not None:
        try:
            workers = max(1, len(psutil.Process(pid).children()))
        except psutil.Error:
            workers = 1
    return float(min(workers or 1, cpus))


def _accounts_wanted(opts: Options, bundled: bool) -> int:
    if bundled:
        return BUNDLED_ACCOUNTS
    ceiling = opts.plan.max_rps or PLANNED_CEILING_RPS
    return accounts_needed(int(ceiling * 60), limit=opts.default_limit)


def _pool_monitor(url: str) -> pool_monitor.PoolMonitor | None:
    """A pool monitor when the target's /health reports a pool, else None (nothing to read)."""
    pool = pool_monitor.PoolMonitor(url, interval_s=POOL_SAMPLE_S)
    first = pool.sample_once()
    return pool if first.get("size") is not None or first.get("checked_out") is not None else None


def search_target(target: Target, opts: Options, *, bundled: bool, workers: int | None,
                  say=print) -> Searched:  # fmt: skip
    """Log in, prepare the mix and run the search against ``target``."""
    plan = build_plan(target, accounts=opts.accounts, tokens=opts.tokens, rate=opts.login_rate,
                      cursor_file=None)  # fmt: skip
    general = plan.general
    accounts = general[: max(1, min(len(general), _accounts_wanted(opts, bundled)))]
    prelogin(plan, accounts)
    cores = server_cores(target.server_pid, workers)
    watch = Watch(monitor.ServerMonitor(target.server_pid, interval_s=SERVER_SAMPLE_S,
                                        unavailable_reason=target.resources_reason))  # fmt: skip

    async def main() -> Searched:
        auth = Authenticator(HttpClient(target.url, verify=target.verify), plan.manager,
                             target.timeout_s)  # fmt: skip
        factory = MixFactory(opts.mix, await prepare(auth, accounts), seed=opts.seed)
        watch.pool = await asyncio.to_thread(_pool_monitor, target.url)
        watch.loop = await asyncio.to_thread(loop_watch.start, target.url, opts.profile,
                                             target.verify)  # fmt: skip
        stop = asyncio.Event()
        _on_signals(stop)
        s = search_run.Search(target.url, factory, opts.plan, opts.timing, opts.slo, watch,
                              opts.budget_s, cores, target.verify, stop, say)  # fmt: skip
        await asyncio.to_thread(watch.server.start)
        if watch.pool is not None:
            watch.pool.start()
        try:
            found = await search_run.run_search(s)
        finally:
            watch.server.stop()
            if watch.pool is not None:
                watch.pool.stop()
            if watch.loop is not None:
                watch.loop.canary.stop()
        return Searched(found, watch, factory, len(accounts), cores)

    return engine.run(main())  # type: ignore[arg-type, return-value]


def _on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C (or SIGTERM) ends the search after the current step's report is gathered."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
