"""Locust event hooks: exact metrics across workers, monitors, the report
at stop and quit, the exit code, the web UI."""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

import gevent
from locust import events
from locust.exception import CatchResponseError
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from loadkit.contract.api import AccountsError
from loadkit.contract.token_store import StoreError
from loadkit.locust_plugin import live, progress, webui
from loadkit.locust_plugin.options import (
    check_host,
    configure_accounts,
    preflight_or_exit,
    prune_user_classes,
    set_shape,
    set_timeouts,
    usage_error,
    warn_open_web_ui,
)
from loadkit.locust_plugin.refusals import NO_ACCOUNT_MESSAGE, WorkersWithoutAccounts
from loadkit.locust_plugin.run import LocustRun
from loadkit.locust_plugin.run_report import final_csv, report_name, run_parameters, write_report
from loadkit.locust_plugin.state import DATA_KEY, EXIT_FAILED, STATE, WORKER_REPORT_WAIT_S, logger
from loadkit.locust_plugin.upkeep import start_upkeep
from loadkit.measure.send import record_locust
from loadkit.measure.timeseries import DEFAULT_MAX_POINTS
from loadkit.report import ending, run_lock
from loadkit.report.run_folder import run_dir
from loadkit.report.server_profile import write_profile
from loadkit.verdicts.slo import TargetsError, load_profile
from loadkit.watch.loopback import is_loopback
from loadkit.watch.monitor import ServerMonitor, find_server_pid
from loadkit.watch.pool import PoolMonitor
from loadkit.watch.server_profile import profile_reason, profiler_for
from loadkit.watch.targeting import host_problem

MONITOR_KEEP = 600  # the monitors' 1 s samples held: 10 minutes, then adjacent pairs merge


def _results(environment: object, options: object) -> None:
    """The run folder; Locust's HTML and CSV go there unless the user named other files."""
    try:
        STATE.directory = run_dir("locust")
    except OSError as exc:
        usage_error(f"cannot create the run folder: {exc}")
    name = report_name(options)
    if not options.html_file:
        options.html_file = str(STATE.directory / f"{name}.html")
    if not options.csv_prefix:
        STATE.csv = StatsCSVFileWriter(
            environment, PERCENTILES_TO_REPORT, str(STATE.directory / name)
        )
        STATE.csv_greenlet = gevent.spawn(STATE.csv.stats_writer)


@events.init.add_listener
def on_init(environment: object, runner: object, web_ui: object = None, **_kw: object) -> None:
    """Validate, load targets and accounts, and prepare results and the web UI."""
    options = environment.parsed_options
    if options is None:  # Locust used as a library without our options
        return
    STATE.environment = environment
    is_worker = isinstance(runner, WorkerRunner)
    _note_endings(is_worker)
    if not is_worker:
        check_host(environment, options)
    try:
        profile = load_profile(options.profile)
        configure_accounts(environment, options)
    except (TargetsError, AccountsError, StoreError) as exc:
        usage_error(str(exc))
    points = max(2, getattr(options, "timeseries_points", 0) or DEFAULT_MAX_POINTS)
    STATE.run = LocustRun(profile=profile, warmup_s=options.warmup, max_points=points)
    set_timeouts(environment, options)
    if is_worker:
        return
    if isinstance(runner, MasterRunner):
        runner.register_message(NO_ACCOUNT_MESSAGE, WorkersWithoutAccounts().heard)
    prune_user_classes(environment, options)
    warn_open_web_ui(options)
    progress.install(getattr(options, "progress_every", 0.0))
    if options.headless:
        preflight_or_exit(environment)
    set_shape(environment, runner, options)
    _results(environment, options)
    problem = live.serve(environment, STATE, STATE.directory.name)
    if problem:
        usage_error(problem)
    if web_ui is not None:
        webui.install(environment, lambda: STATE.run)
    if environment.host and not host_problem(environment.host):
        STATE.run.prime_canary(environment.host)  # idle p99 now, while nothing runs


def _note_endings(is_worker: bool) -> None:
    """SIGTERM is Locust's own shutdown (the report says "SIGTERM"); SIGHUP (terminal closed)
    takes the same way; SIGINT is delivered by the hub (`_interrupt`). Workers ignore SIGHUP:
    their master quits them."""
    if is_worker:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        return
    gevent.signal_handler(signal.SIGTERM, ending.note, "SIGTERM")
    gevent.signal_handler(signal.SIGHUP, _hang_up)
    gevent.signal_handler(signal.SIGINT, _interrupt)


def _interrupt() -> None:
    """SIGINT (Ctrl-C): Locust's own KeyboardInterrupt, thrown into the main greenlet by the hub.
    Python's default handler raises it in whatever frame runs at that instant; one that lands in
    a finalizer is printed and dropped, and the run went on (seen twice in CI: the load ran on for
    60 s after the SIGINT, no report)."""
    hub = gevent.get_hub()
    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)


def _hang_up() -> None:
    """SIGHUP: note it, then end the run as SIGTERM does (a second SIGHUP: nothing more)."""
    if ending.note("SIGHUP"):
        os.kill(os.getpid(), signal.SIGTERM)


def _join_run_lock(host: str) -> None:
    """Register the run against its target (report/run_lock); warn of the runs going on now."""
    if STATE.directory is None or not host:
        return
    others = run_lock.join(host, STATE.directory)
    if others:
        logger.warning("%s", run_lock.describe(others))


@events.request.add_listener
def on_request(
    name: str,
    response_time: float,
    response: object = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    context: dict | None = None,
    **_kw: object,
) -> None:
    """Record one request through the one send-and-record path (`measure.send.record_locust`):
    latency only when a response came; the kind of a failure from the exception's type; the
    persona from the request's context (`users.ApiUser.context`)."""
    if STATE.run is None:
        return
    status = getattr(response, "status_code", None) or None
    verdict = isinstance(exception, CatchResponseError)  # the persona's own verdict on an answer
    persona = (context or {}).get("persona")
    record_locust(STATE.run.recorder, name, response_time, status, exception, at=start_time,
                  verdict=verdict, persona=persona)  # fmt: skip


@events.report_to_master.add_listener
def on_report_to_master(client_id: str, data: dict, **_kw: object) -> None:
    """Worker: ship what was recorded since the last report, and this process's CPU."""
    if STATE.run is not None and STATE.run.started_at is not None:
        data[DATA_KEY] = STATE.run.take_delta()
        live.ship(data)


@events.worker_report.add_listener
def on_worker_report(client_id: str, data: dict, **_kw: object) -> None:
    """Master: merge a worker's delta into the aggregate."""
    if STATE.run is not None and DATA_KEY in data:
        STATE.run.merge_delta(client_id, data[DATA_KEY])
    live.merge(data)


def _monitors(environment: object) -> tuple[ServerMonitor, PoolMonitor | None]:
    options, host = environment.parsed_options, environment.host or ""
    pid = options.server_pid or find_server_pid(host)
    pool = PoolMonitor(host, keep=MONITOR_KEEP) if host else None
    return ServerMonitor(pid, keep=MONITOR_KEEP), pool


@events.test_start.add_listener
def on_test_start(environment: object, **_kw: object) -> None:
    """Fresh figures; the monitors start on the master or the local runner only."""
    if STATE.run is None:
        return
    runner = environment.runner
    live.begin(environment)
    if isinstance(runner, WorkerRunner):
        STATE.run.begin()
        return
    options = environment.parsed_options
    host = environment.host or ""
    hostname = urlsplit(host).hostname if "://" in host else host
    if hostname and not is_loopback(hostname) and not options.yes:
        logger.error("refusing to load %s without --yes", host)
        gevent.spawn(runner.stop)
        return
    STATE.parameters = run_parameters(environment)
    _join_run_lock(host)
    STATE.run.begin(monitors=_monitors(environment))
    STATE.run.checkpointer = start_upkeep(environment)
    _start_profile(environment)


def _start_profile(environment: object) -> None:
    """The master's (or local runner's) one py-spy recording of the server, for this test."""
    options, host = environment.parsed_options, environment.host or ""
    if STATE.directory is None:
        return
    hostname = (urlsplit(host).hostname if "://" in host else host) or ""
    remote = bool(hostname) and not is_loopback(hostname)
    pid = options.server_pid or (None if remote else find_server_pid(host))
    reason = profile_reason(enabled=True, remote=remote, pid=pid, host=host)
    STATE.profiler = profiler_for(
        STATE.directory, enabled=options.server_profile, pid=pid, unavailable=reason
    )
    STATE.profiler.start()


def _stop_profile() -> None:
    """Stop the recording and write the run's profile before the folder is rendered."""
    profiler, STATE.profiler = STATE.profiler, None
    if profiler is not None and STATE.directory is not None:
        write_profile(STATE.directory, profiler.stop())


@events.test_stop.add_listener
def on_test_stop(environment: object, **_kw: object) -> None:
    """A test stopped: stop monitors and write the report (after the workers' last reports)."""
    run = STATE.run
    if run is None or isinstance(environment.runner, WorkerRunner) or run.finalized:
        return
    if run.started_at is None:
        return
    _stop_profile()
    run.end()
    if isinstance(environment.runner, MasterRunner):
        gevent.spawn_later(WORKER_REPORT_WAIT_S, _write_unless_final, environment)
    else:
        write_report(environment)


def _write_unless_final(environment: object) -> None:
    if STATE.run is not None and not STATE.run.finalized:
        write_report(environment)


@events.quitting.add_listener
def on_quitting(environment: object, **_kw: object) -> None:
    """Settle the verdict: the final report (interrupted if the test was still running), exit
    code."""
    run = STATE.run
    if run is None or isinstance(environment.runner, WorkerRunner) or run.finalized:
        return
    interrupted = run.running
    run.end()
    run.running = interrupted  # the report says whether the test was cut short
    if run.started_at is not None:
        write_report(environment)
        if interrupted:
            environment.process_exit_code = STATE.forced_exit or EXIT_FAILED
    run.finalized = True
    run_lock.leave()
    final_csv()


@events.quitting.add_listener
def on_quitting_metrics(environment: object, **_kw: object) -> None:
    """After the final report: serve the live metrics a few seconds more, then close them."""
    live.stop()
