"""Locust event hooks: options, exact metrics across workers, monitors, report, exit code, web UI.

Importing this module from the locustfile registers the listeners (Locust's own idiom). In brief:
- options ``--accounts --tokens --login-rate --no-token-cache --server-pid --shape --report-name
  --warmup --request-timeout --yes``;
- ``init``: refuse a malformed host, or one outside loopback without ``--yes`` (exit 2), load
  targets and accounts (one line, exit 2); headless, refuse an unwritable results folder and a
  target whose /health does not answer 200 before any load (one line, exit 2); drop personas
  that ``--tags`` left without tasks, pick the shape, put Locust's HTML and CSV in the run
  folder, add the web UI's Server tab and charts;
- ``request``: every request into this process's `RunRecorder` (exact percentiles, named by route);
- ``report_to_master`` / ``worker_report``: workers ship their deltas, the master merges them;
- ``test_start`` / ``test_stop``: monitors (master or local only), a report at each stop;
- ``quitting``: the final report (``interrupted`` when the test was still running: Ctrl-C, SIGTERM)
  and ``environment.process_exit_code``: 0 when every threshold passed, 1 otherwise or when
  interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import gevent
from locust import events
from locust.exception import CatchResponseError
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from loadkit import locust_users, locust_webui
from loadkit.accounts import manager_for, source_accounts
from loadkit.api import AccountsError
from loadkit.locust_run import LocustRun
from loadkit.locust_shapes import SHAPES
from loadkit.monitor import PoolMonitor, ServerMonitor, find_server_pid, is_loopback
from loadkit.report import run_dir, writable_problem
from loadkit.slo import TargetsError, load_profile
from loadkit.targeting import Target, host_problem, preflight
from loadkit.token_store import StoreError

logger = logging.getLogger("loadkit.locust")
EXIT_FAILED = 1
EXIT_USAGE = 2
WORKER_REPORT_WAIT_S = 3.5  # a worker's stats message comes every 3 s
DATA_KEY = "loadkit"


class _State:
    run: LocustRun | None = None
    environment: object = None
    directory: Path | None = None
    csv: StatsCSVFileWriter | None = None
    csv_greenlet: gevent.Greenlet | None = None
    parameters: dict | None = None
    last_logged: str | None = None  # the report is written at stop and again at quit: log once


STATE = _State()


@events.init_command_line_parser.add_listener
def add_arguments(parser: object, **_kw: object) -> None:
    """Our options, beside Locust's (shown in the web UI's form where they make sense).

    Locust 2.47 has a ``--profile`` of its own (a name grouping test runs): it names our targets
    profile too, so it is reused rather than added.
    """
    parser.add_argument(
        "--accounts",
        default=None,
        help="JSON list of {email, password} (else LOADTEST_ACCOUNTS, seed accounts)",
    )
    parser.add_argument(
        "--tokens",
        default=None,
        include_in_web_ui=False,
        help="JSON list of pre-issued {email, access_token} (deployments behind SSO)",
    )
    parser.add_argument(
        "--login-rate",
        default=None,
        include_in_web_ui=False,
        help="login budget N/PERIOD once a login is refused (else LOADTEST_LOGIN_RATE, 5/minute)",
    )
    parser.add_argument(
        "--no-token-cache",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="keep tokens in memory only (no cache file)",
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        default=None,
        include_in_web_ui=False,
        help="PID of the server process (default: whoever listens on the target's port)",
    )
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default=None,
        include_in_web_ui=False,
        help="load shape: step or spike (sized by -u, -r, -t)",
    )
    parser.add_argument(
        "--report-name", default=None, help="report file name (default: locust_<tags>)"
    )
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="seconds excluded from steady-state figures"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=60.0,
        include_in_web_ui=False,
        help="per-request (and connect) time-out in seconds (default: Locust's 60)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="allow load on a host outside loopback",
    )


def _usage_error(message: str) -> None:
    """One line, exit 2 (before any load was sent)."""
    sys.stderr.write(f"load_test: {message}\n")
    sys.exit(EXIT_USAGE)


def report_name(options: object) -> str:
    """--report-name, else locust_<tags joined> (locust_all without tags)."""
    if getattr(options, "report_name", None):
        return options.report_name
    tags = sorted(getattr(options, "tags", None) or [])
    return "locust_" + ("_".join(tags) if tags else "all")


def _check_host(environment: object, options: object) -> None:
    """Headless: a missing or malformed host, or one outside loopback without --yes, is refused."""
    host = environment.host or ""
    if not host and options.headless:
        _usage_error("no target: pass --host URL (e.g. --host http://127.0.0.1:8000)")
    if host and options.headless and host_problem(host):
        _usage_error(host_problem(host))
    hostname = urlsplit(host if "://" in host else f"http://{host}").hostname
    if hostname and not is_loopback(hostname) and not options.yes:
        message = f"{host} is not this machine: real load on a real system needs --yes"
        if options.headless:
            _usage_error(message)
        logger.warning("%s (tests started from the web UI will be refused)", message)


def _wanted(cls: type, options: object) -> bool:
    """An opt-in persona (``opt_in_tag``: the defect prober, which spends limits on purpose) runs
    only when its tag is asked for or the class is named; every other persona runs by default."""
    tag = getattr(cls, "opt_in_tag", None)
    named = options.user_classes or []
    return tag is None or tag in (options.tags or []) or cls.__name__ in named


def _prune_user_classes(environment: object, options: object) -> None:
    """Drop personas whose every task was filtered out by --tags/--exclude-tags, and opt-in ones."""
    environment._filter_tasks_by_tags()
    kept = [cls for cls in environment.user_classes if cls.tasks and _wanted(cls, options)]
    if not kept:
        _usage_error("no persona has a task with these --tags")
    environment.user_classes[:] = kept


def _set_timeouts(environment: object, options: object) -> None:
    """--request-timeout on every persona's client (FastHttpUser reads these at start)."""
    for cls in environment.user_classes:
        cls.network_timeout = cls.connection_timeout = options.request_timeout


def _preflight(environment: object) -> None:
    """Headless: refuse (one line, exit 2) before any load when results cannot be written or the
    target's GET /health does not answer 200."""
    problem = writable_problem()
    if not problem and environment.host:
        problem = preflight(Target(environment.host.rstrip("/"), None, None))
    if problem:
        _usage_error(problem)


def _set_shape(environment: object, runner: object, options: object) -> None:
    if options.shape:
        shape = SHAPES[options.shape]()
        shape.runner = runner
        environment.shape_class = shape


def _results(environment: object, options: object) -> None:
    """The run folder; Locust's HTML and CSV go there unless the user named other files."""
    try:
        STATE.directory = run_dir("locust")
    except OSError as exc:
        _usage_error(f"cannot create the run folder: {exc}")
    name = report_name(options)
    if not options.html_file:
        options.html_file = str(STATE.directory / f"{name}.html")
    if not options.csv_prefix:
        STATE.csv = StatsCSVFileWriter(
            environment, PERCENTILES_TO_REPORT, str(STATE.directory / name)
        )
        STATE.csv_greenlet = gevent.spawn(STATE.csv.stats_writer)


def _configure_accounts(environment: object, options: object) -> None:
    """The accounts and the token manager of this process (shared cache, login budget)."""
    if getattr(options, "no_token_cache", False):
        os.environ["LOADTEST_NO_TOKEN_CACHE"] = "1"
    host = (environment.host or "").rstrip("/")
    manager = manager_for(host or "http://unknown", None, rate=getattr(options, "login_rate", None))
    accounts, from_default = source_accounts(
        options.accounts, getattr(options, "tokens", None), manager.store
    )
    manager.seeds_from_default = from_default
    locust_users.configure_accounts(accounts, manager)


@events.init.add_listener
def on_init(environment: object, runner: object, web_ui: object = None, **_kw: object) -> None:
    """Validate, load targets and accounts, and prepare results and the web UI."""
    options = environment.parsed_options
    if options is None:  # Locust used as a library without our options
        return
    STATE.environment = environment
    is_worker = isinstance(runner, WorkerRunner)
    if not is_worker:
        _check_host(environment, options)
    try:
        profile = load_profile(options.profile)
        _configure_accounts(environment, options)
    except (TargetsError, AccountsError, StoreError) as exc:
        _usage_error(str(exc))
    STATE.run = LocustRun(profile=profile, warmup_s=options.warmup)
    _set_timeouts(environment, options)
    if is_worker:
        return
    _prune_user_classes(environment, options)
    if options.headless:
        _preflight(environment)
    _set_shape(environment, runner, options)
    _results(environment, options)
    if web_ui is not None:
        locust_webui.install(environment, lambda: STATE.run)
    if environment.host and not host_problem(environment.host):
        STATE.run.prime_canary(environment.host)  # idle p99 now, while nothing runs


@events.request.add_listener
def on_request(
    name: str,
    response_time: float,
    response: object = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_kw: object,
) -> None:
    """Record one request: latency only when a response came, its error kind when it failed."""
    if STATE.run is None:
        return
    status = getattr(response, "status_code", None) or None
    kind = error_kind(exception, status)
    if kind in ("connection", "timeout"):
        status = None  # the response broke off (e.g. body cut short): no status, no latency
    latency = None if status is None else response_time / 1000
    message = "" if exception is None else str(exception)
    STATE.run.recorder.record(
        name, latency, status=status, error_kind=kind, message=message, at=start_time
    )


def error_kind(exception: BaseException | None, status: int | None) -> str | None:
    """The report's error kind of a Locust request outcome (None: success)."""
    if exception is None:
        return None
    if status is None:
        text = f"{type(exception).__name__} {exception}".lower()
        return "timeout" if "timeout" in text or "timed out" in text else "connection"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    # a persona's own verdict on a response is a check; anything else broke the transfer itself
    return "check" if isinstance(exception, CatchResponseError) else "connection"


@events.report_to_master.add_listener
def on_report_to_master(client_id: str, data: dict, **_kw: object) -> None:
    """Worker: ship what was recorded since the last report, and this process's CPU."""
    if STATE.run is not None and STATE.run.started_at is not None:
        data[DATA_KEY] = STATE.run.take_delta()


@events.worker_report.add_listener
def on_worker_report(client_id: str, data: dict, **_kw: object) -> None:
    """Master: merge a worker's delta into the aggregate."""
    if STATE.run is not None and DATA_KEY in data:
        STATE.run.merge_delta(client_id, data[DATA_KEY])


def _monitors(environment: object) -> tuple[ServerMonitor, PoolMonitor | None]:
    options, host = environment.parsed_options, environment.host or ""
    pid = options.server_pid or find_server_pid(host)
    pool = PoolMonitor(host) if host else None
    return ServerMonitor(pid), pool


@events.test_start.add_listener
def on_test_start(environment: object, **_kw: object) -> None:
    """Fresh figures; the monitors start on the master or the local runner only."""
    if STATE.run is None:
        return
    runner = environment.runner
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
    STATE.parameters = _parameters(environment)
    STATE.run.begin(monitors=_monitors(environment))


@events.test_stop.add_listener
def on_test_stop(environment: object, **_kw: object) -> None:
    """A test stopped: stop monitors and write the report (after the workers' last reports)."""
    run = STATE.run
    if run is None or isinstance(environment.runner, WorkerRunner) or run.finalized:
        return
    if run.started_at is None:
        return
    run.end()
    if isinstance(environment.runner, MasterRunner):
        gevent.spawn_later(WORKER_REPORT_WAIT_S, _write_unless_final, environment)
    else:
        write_report(environment)


def _write_unless_final(environment: object) -> None:
    if STATE.run is not None and not STATE.run.finalized:
        write_report(environment)


def _parameters(environment: object) -> dict:
    options = environment.parsed_options
    runner = environment.runner
    return {
        "users": options.num_users,
        "spawn_rate": options.spawn_rate,
        "run_time": options.run_time,
        "tags": options.tags,
        "exclude_tags": options.exclude_tags,
        "shape": options.shape,
        "personas": sorted(cls.__name__ for cls in environment.user_classes),
        "workers": runner.worker_count if isinstance(runner, MasterRunner) else 1,
        "accounts": options.accounts or "default",
    }


def _locust_totals(environment: object) -> dict:
    total = environment.runner.stats.total
    return {"num_requests": total.num_requests, "num_failures": total.num_failures}


def write_report(environment: object) -> Path | None:
    """Write the report now; set the exit code from its verdict."""
    run = STATE.run
    if run is None or run.started_at is None or STATE.directory is None:
        return None
    report = run.report(
        test_name=report_name(environment.parsed_options),
        target=environment.host or "",
        parameters=STATE.parameters or _parameters(environment),
        extra={"locust_stats": _locust_totals(environment)},
    )
    path = run.write(report, STATE.directory)
    environment.process_exit_code = 0 if report["passed"] else EXIT_FAILED
    verdict = "passed" if report["passed"] else "FAILED"
    state = "interrupted" if report["interrupted"] else "complete"
    lines = f"report {verdict}: {path} ({state})\n{summary_line(report)}"
    if lines != STATE.last_logged:
        STATE.last_logged = lines
        for line in lines.splitlines():
            logger.info("%s", line)
    return path


def summary_line(report: dict) -> str:
    """Our exact figures in one line, beside Locust's approximated table."""

    def ms(key: str) -> str:
        value = report.get(f"response_time_{key}_ms")
        return "n/a" if value is None else f"{value:.1f}"

    res, pool = report.get("resources") or {}, report.get("db_pool") or {}
    failed = [t["metric"] for t in report.get("thresholds") or [] if not t.get("passed")]
    server = (
        f"server RSS {res['memory_initial_mb']:.1f}->{res['memory_peak_mb']:.1f} MB peak, "
        f"CPU {res['cpu_avg_percent']:.1f}%"
        if res.get("memory_peak_mb") is not None and res.get("cpu_avg_percent") is not None
        else f"server figures unavailable ({res.get('unavailable_reason', 'no server process')})"
    )
    return (
        f"exact: {report.get('total_requests', 0)} requests, "
        f"{report.get('error_rate_percent') or 0:.2f}% errors, p50 {ms('p50')} / p95 {ms('p95')} / "
        f"p99 {ms('p99')} / max {ms('max')} ms; {server}; pool checked-out max "
        f"{pool.get('checked_out_max', 'n/a')}; thresholds failed: {', '.join(failed) or 'none'}"
    )


def _final_csv() -> None:
    """Rewrite Locust's CSV from the final stats (its writer lags up to a second), then close it."""
    if STATE.csv is None:
        return
    if STATE.csv_greenlet is not None:
        STATE.csv_greenlet.kill(block=True)
    w = STATE.csv
    for kind, columns in (
        ("requests", w.requests_csv_columns),
        ("failures", w.failures_columns),
        ("exceptions", w.exceptions_columns),
    ):
        handle, csv_writer = getattr(w, f"{kind}_csv_filehandle"), getattr(w, f"{kind}_csv_writer")
        handle.seek(0)
        handle.truncate()
        csv_writer.writerow(columns)
        getattr(w, f"_{kind}_data_rows")(csv_writer)
    w.close_files()
    STATE.csv = None


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
            environment.process_exit_code = EXIT_FAILED
    run.finalized = True
    _final_csv()
