"""Root pytest configuration for the load suites (pytest_load_test.py, baseline_test.py).

Keeps the Locust file out of collection (importing it patches gevent) and imports no Locust module.
Options: ``--host`` (registered by Locust's pytest plugin, reused here), ``--profile``,
``--accounts``, ``--server-pid``, ``--request-timeout`` (pytest-timeout owns ``--timeout``),
``--insecure``, ``--ca-bundle`` and ``--yes`` (needed for a target outside loopback). Without
``--host`` the reference backend starts once per run, shared by pytest-xdist workers
(loadkit.shared_backend). The fixtures are lazy: the project's own tests under tests/ start nothing
and write no run folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from loadkit import targeting

collect_ignore = ["load_test.py"]

STATE_DIR_KEY = "loadtest_state_dir"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The load suites' options (``--host`` comes from Locust's plugin, else it is added)."""
    with contextlib.suppress(ValueError):  # Locust's pytest plugin registered it already
        parser.addoption(
            "--host", "-H", default=None, help="target URL (default: reference backend)"
        )
    group = parser.getgroup("loadtest", "TherapyBridge load tests")
    group.addoption(
        "--profile", default=None, help="targets.toml profile (default: LOADTEST_PROFILE)"
    )
    group.addoption("--accounts", default=None, help="JSON file of [{email, password}] accounts")
    group.addoption(
        "--server-pid", type=int, default=None, help="server process for resource figures"
    )
    group.addoption(
        "--request-timeout", type=float, default=30.0, help="per-request time-out, seconds"
    )
    group.addoption("--insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--ca-bundle", default=None, help="CA bundle file for TLS verification")
    group.addoption("--yes", action="store_true", help="confirm load on a host outside loopback")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a non-loopback target without --yes; the controller makes the shared state folder."""
    host = config.getoption("--host", default=None)
    if host and targeting.host_problem(host):
        pytest.exit(targeting.host_problem(host), returncode=2)
    if host and not config.getoption("--yes") and not targeting.is_loopback(host):
        pytest.exit(targeting.confirm_message(host), returncode=2)
    if not hasattr(config, "workerinput"):
        config.stash[_STATE_DIR] = Path(tempfile.mkdtemp(prefix="loadtest-state-"))


_STATE_DIR = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """With --host, check the target and one login before any worker starts (exit 2, one line)."""
    config = session.config
    if hasattr(config, "workerinput") or not config.getoption("--host", default=None):
        return
    if config.option.collectonly:
        return
    from loadkit import report, slo
    from loadkit import session as auth

    problem = report.writable_problem()  # refused before any request reaches the target
    if problem:
        pytest.exit(problem, returncode=2)
    try:
        slo.load_profile(config.getoption("--profile"))
    except slo.TargetsError as exc:
        pytest.exit(str(exc), returncode=2)
    target = targeting.remote_or_local(targeting.Options.from_config(config))
    problem = targeting.preflight(target)
    if problem:
        pytest.exit(problem, returncode=2)
    try:
        index, count = _worker(config)
        plan = auth.AccountPlan.build(config.getoption("--accounts"), worker=index, workers=count)
        auth.check_login(target, plan.general[0])
    except auth.AccountsUnusable as exc:
        pytest.exit(str(exc), returncode=2)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist (controller): hand the shared state folder and run folder to each worker."""
    node.workerinput[STATE_DIR_KEY] = str(node.config.stash[_STATE_DIR])


def pytest_unconfigure(config: pytest.Config) -> None:
    """Controller: stop a backend nobody stopped (a crashed worker), remove the state folder."""
    state_dir = config.stash.get(_STATE_DIR, None)
    if state_dir is None:
        return
    from loadkit import shared_backend

    shared_backend.stop_leftover(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


def _state_dir(config: pytest.Config) -> Path:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return Path(workerinput[STATE_DIR_KEY])
    return config.stash[_STATE_DIR]


def _worker(config: pytest.Config) -> tuple[int, int]:
    """(index, count) of this process's share of the accounts.

    An xdist worker takes its own share; otherwise LOADTEST_ACCOUNT_SHARD="i/n" (set by the runner's
    `all` preset, one pytest process per scenario) keeps processes off each other's accounts, so no
    account is logged in more than once per run; else (0, 1).
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput["workerid"].removeprefix("gw")), int(workerinput["workercount"])
    index, _, count = os.environ.get("LOADTEST_ACCOUNT_SHARD", "0/1").partition("/")
    try:
        return int(index), max(1, int(count))
    except ValueError:
        pytest.exit("LOADTEST_ACCOUNT_SHARD must look like 2/7", returncode=2)


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config):
    """The targets.toml profile: --profile, else LOADTEST_PROFILE, else "default"."""
    from loadkit import slo

    try:
        return slo.load_profile(pytestconfig.getoption("--profile"))
    except slo.TargetsError as exc:
        pytest.exit(str(exc), returncode=2)


@pytest.fixture(scope="session")
def run_folder(pytestconfig: pytest.Config) -> Path:
    """The one results folder of this run (shared with xdist workers and child processes)."""
    from loadkit import report, shared_backend

    problem = report.writable_problem()
    if problem:
        pytest.exit(problem, returncode=2)
    return shared_backend.shared_run_dir(_state_dir(pytestconfig), lambda: report.run_dir("pytest"))


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config, run_folder: Path, profile) -> targeting.Target:
    """The system under test: --host, or the shared reference backend; checked reachable."""
    from loadkit import shared_backend

    options = targeting.Options.from_config(pytestconfig)
    state_dir = _state_dir(pytestconfig)
    if options.host:
        chosen = targeting.remote_or_local(options)
    else:
        try:
            backend = shared_backend.acquire(state_dir, run_folder, targeting.start_reference)
        except Exception as exc:  # a failed start is a pre-flight error: one line, exit 2
            pytest.exit(f"cannot start the reference backend: {exc}", returncode=2)
        chosen = targeting.started(options, backend.url, backend.pid)
    try:
        problem = targeting.preflight(chosen)
        if problem:
            pytest.exit(problem, returncode=2)
        yield chosen
    finally:
        if not options.host:
            shared_backend.release(state_dir)


@pytest.fixture(scope="session")
def accounts(pytestconfig: pytest.Config, target: targeting.Target):
    """This worker's share of the accounts, plus the reserved rate-limit ones; one login checked."""
    from loadkit import session as auth

    index, count = _worker(pytestconfig)
    try:
        plan = auth.AccountPlan.build(
            pytestconfig.getoption("--accounts"), worker=index, workers=count
        )
        auth.check_login(target, plan.general[0])
    except auth.AccountsUnusable as exc:
        pytest.exit(str(exc), returncode=2)
    return plan


@pytest.fixture
def drive(request: pytest.FixtureRequest, target: targeting.Target, profile, run_folder: Path):
    """Run a scenario of loadkit.scenarios for this test, write its report, assert its verdict.

    Without accounts (the baseline); tests that need them pass ``plan=`` (the ``accounts`` fixture).
    """
    from loadkit import scenarios
    from loadkit.outcome import Outcome, failure_message, reporting, safe_test_name

    def run(scenario, *args, plan=None):
        outcome = Outcome(safe_test_name(request.node.name), target.url, profile.name)
        ctx = scenarios.Ctx(target, profile, plan)
        with reporting(outcome, run_folder):
            scenarios.run(scenario, ctx, outcome, *args)
        message = failure_message(outcome.thresholds, outcome.problems)
        if message:
            pytest.fail(message, pytrace=False)
        if outcome.skip_reason:
            pytest.skip(outcome.skip_reason)
        return outcome

    return run
