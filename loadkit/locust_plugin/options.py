"""The suite's Locust options and the checks made on them at init:
host and consent, tags and personas, time-outs, pre-flight, the load shape, accounts."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from locust import events

from loadkit.contract.accounts import manager_for, source_accounts
from loadkit.locust_plugin import progress, users
from loadkit.locust_plugin.shapes import SHAPES
from loadkit.locust_plugin.state import EXIT_USAGE, logger
from loadkit.measure.timeseries import DEFAULT_MAX_POINTS
from loadkit.report.run_folder import writable_problem
from loadkit.watch.loopback import is_loopback
from loadkit.watch.targeting import Target, host_problem, preflight


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
        "--server-profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        include_in_web_ui=False,
        help="py-spy profile of a local server into the run folder (default: off, see README)",
    )
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default=None,
        include_in_web_ui=False,
        help="load shape: step or spike (sized by -u, -r, -t)",
    )
    parser.add_argument(
        "--upload-size",
        default=None,
        include_in_web_ui=False,
        help="RealisticTherapist's upload size, or a mix to draw from: 25MB, 24MiB, 5MB,25MB,50MB",
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
    progress.add_argument(parser)
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=0.0,
        include_in_web_ui=False,
        help="write the report (checkpoint: true) and report.md every N seconds (0: off)",
    )
    parser.add_argument(
        "--timeseries-points",
        type=int,
        default=DEFAULT_MAX_POINTS,
        env_var="LOADTEST_TIMESERIES_POINTS",
        include_in_web_ui=False,
        help=f"most time-series points kept; past it the interval doubles (default "
        f"{DEFAULT_MAX_POINTS})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        include_in_web_ui=False,
        help="serve live Prometheus metrics on 127.0.0.1:PORT/metrics (master only; 0: off)",
    )
    loopback_defaults(parser)


LOOPBACK = "127.0.0.1"
BIND_OPTIONS = ("web_host", "master_bind_host")


def loopback_defaults(parser: object) -> None:
    """The web UI and the master listen on 127.0.0.1 unless --web-host / --master-bind-host (or
    LOCUST_WEB_HOST, LOCUST_MASTER_BIND_HOST, a config file) say otherwise, from any folder:
    Locust's own defaults are every interface. Runs after Locust added its options. (Locust's
    ``--help`` is printed before the locustfile loads, so it still says "Defaults to '*'".)"""
    parser.set_defaults(**dict.fromkeys(BIND_OPTIONS, LOOPBACK))


def warn_open_web_ui(options: object) -> None:
    """One warning line when the web UI listens beyond loopback: its form has no password."""
    host = getattr(options, "web_host", LOOPBACK)
    if getattr(options, "headless", False) or is_loopback(host or ""):
        return
    shown = "every interface" if host in ("", "*") else host
    logger.warning(
        "the web UI listens on %s: its form has no password, and anyone who can reach this "
        "machine can start load from it (--web-host 127.0.0.1 keeps it to this machine)",
        shown,
    )


def usage_error(message: str) -> None:
    """One line, exit 2 (before any load was sent)."""
    sys.stderr.write(f"load_test: {message}\n")
    sys.exit(EXIT_USAGE)


def check_host(environment: object, options: object) -> None:
    """Headless: a missing or malformed host, or one outside loopback without --yes, is refused."""
    host = environment.host or ""
    if not host and options.headless:
        usage_error("no target: pass --host URL (e.g. --host http://127.0.0.1:8000)")
    if host and options.headless and host_problem(host):
        usage_error(host_problem(host))
    hostname = urlsplit(host if "://" in host else f"http://{host}").hostname
    if hostname and not is_loopback(hostname) and not options.yes:
        message = f"{host} is not this machine: real load on a real system needs --yes"
        if options.headless:
            usage_error(message)
        logger.warning("%s (tests started from the web UI will be refused)", message)


def _wanted(cls: type, options: object) -> bool:
    """An opt-in persona (``opt_in_tag``: the defect prober, which spends limits on purpose) runs
    only when its tag is asked for or the class is named; every other persona runs by default."""
    tag = getattr(cls, "opt_in_tag", None)
    named = options.user_classes or []
    return tag is None or tag in (options.tags or []) or cls.__name__ in named


def prune_user_classes(environment: object, options: object) -> None:
    """Drop personas whose every task was filtered out by --tags/--exclude-tags, and opt-in ones."""
    environment._filter_tasks_by_tags()
    kept = [cls for cls in environment.user_classes if cls.tasks and _wanted(cls, options)]
    if not kept:
        usage_error("no persona has a task with these --tags")
    environment.user_classes[:] = kept


def set_timeouts(environment: object, options: object) -> None:
    """--request-timeout on every persona's client (FastHttpUser reads these at start)."""
    for cls in environment.user_classes:
        cls.network_timeout = cls.connection_timeout = options.request_timeout


def preflight_or_exit(environment: object) -> None:
    """Headless: refuse (one line, exit 2) before any load when results cannot be written or the
    target's GET /health does not answer 200."""
    problem = writable_problem()
    if not problem and environment.host:
        problem = preflight(Target(environment.host.rstrip("/"), None, None))
    if problem:
        usage_error(problem)


def set_shape(environment: object, runner: object, options: object) -> None:
    if options.shape:
        shape = SHAPES[options.shape]()
        shape.runner = runner
        environment.shape_class = shape


def configure_accounts(environment: object, options: object) -> None:
    """The accounts and the token manager of this process (shared cache, login budget)."""
    if getattr(options, "no_token_cache", False):
        os.environ["LOADTEST_NO_TOKEN_CACHE"] = "1"
    host = (environment.host or "").rstrip("/")
    manager = manager_for(host or "http://unknown", None, rate=getattr(options, "login_rate", None))
    accounts, from_default = source_accounts(
        options.accounts, getattr(options, "tokens", None), manager.store
    )
    manager.seeds_from_default = from_default
    users.configure_accounts(accounts, manager)
