"""Root pytest configuration for the load suites (pytest_load_test.py, baseline_test.py).

Keeps the Locust file out of collection (importing it patches gevent) and imports no Locust module.
Options: ``--host`` (registered by Locust's pytest plugin, reused here), ``--profile``,
``--accounts``, ``--tokens``, ``--login-rate``, ``--no-token-cache``, ``--server-pid``,
``--request-timeout`` (pytest-timeout owns ``--timeout``), ``--insecure``, ``--ca-bundle`` and
``--yes`` (needed for a target outside loopback) and ``--metrics-port`` (live Prometheus metrics).
Without ``--host`` the reference backend starts once per run, shared by pytest-xdist workers
(loadkit.suite.shared_backend). The fixtures are lazy: the project's own tests under tests/ start
nothing and write no run folder, and a run of tests that need no account (the baseline) never logs
in. Before the first test that needs accounts, the accounts every selected test will take are logged
in (within the login budget, `loadkit.contract.accounts`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from loadkit.suite import options
from loadkit.watch import targeting
from loadkit.watch.loopback import is_loopback

collect_ignore = ["load_test.py"]

STATE_DIR_KEY = "loadtest_state_dir"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The load suites' options: `loadkit.suite.options`."""
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a non-loopback target without --yes; the controller makes the shared state folder."""
    host = config.getoption("--host", default=None)
    if host and targeting.host_problem(host):
        pytest.exit(targeting.host_problem(host), returncode=2)
    if host and not config.getoption("--yes") and not is_loopback(host):
        pytest.exit(targeting.confirm_message(host), returncode=2)
    _token_options(config)
    from loadkit.report import ending

    ending.install()  # SIGTERM and SIGHUP end the run as Ctrl-C does: every report is written
    if not 0 <= config.getoption("--metrics-port") <= 65535:
        pytest.exit("--metrics-port must be a port number (1-65535)", returncode=2)
    if not hasattr(config, "workerinput"):
        config.stash[_STATE_DIR] = Path(tempfile.mkdtemp(prefix="loadtest-state-"))


_STATE_DIR = pytest.StashKey[Path]()


def _token_options(config: pytest.Config) -> None:
    """--login-rate must parse; --no-token-cache reaches every worker through the environment."""
    from loadkit.contract.token_store import StoreError, parse_rate

    rate = config.getoption("--login-rate", default=None)
    try:
        parse_rate(rate or os.environ.get("LOADTEST_LOGIN_RATE"))
    except StoreError as exc:
        pytest.exit(str(exc), returncode=2)
    if rate:
        os.environ["LOADTEST_LOGIN_RATE"] = rate
    if config.getoption("--no-token-cache", default=False):
        os.environ["LOADTEST_NO_TOKEN_CACHE"] = "1"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """With --host, check the target (and under xdist one login) before any worker starts."""
    config = session.config
    if hasattr(config, "workerinput") or not config.getoption("--host", default=None):
        return
    if config.option.collectonly:
        return
    from loadkit.report.run_folder import writable_problem
    from loadkit.suite import session as auth
    from loadkit.verdicts import slo

    problem = writable_problem()  # refused before any request reaches the target
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
    if not config.getoption("numprocesses", default=None) or _baseline_only(config):
        return  # without xdist the accounts fixture checks the first login, when a test needs it
    try:
        plan = _plan(config, target, None)
        auth.prelogin(plan, plan.peek(1) or [*plan.roles.reserved][:1])
    except auth.AccountsUnusable as exc:
        pytest.exit(str(exc), returncode=2)


def _baseline_only(config: pytest.Config) -> bool:
    """Whether the command line names only baseline_test.py (which needs no account)."""
    files = [a.split("::")[0] for a in config.args]
    return bool(files) and all(Path(f).name == "baseline_test.py" for f in files)


def _plan(config: pytest.Config, target, cursor_file: Path | None):
    from loadkit.suite import session as auth

    return auth.build_plan(
        target,
        accounts=config.getoption("--accounts"),
        tokens=config.getoption("--tokens"),
        rate=config.getoption("--login-rate"),
        cursor_file=cursor_file,
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist (controller): hand the shared state folder and run folder to each worker."""
    node.workerinput[STATE_DIR_KEY] = str(node.config.stash[_STATE_DIR])


def pytest_unconfigure(config: pytest.Config) -> None:
    """Controller: stop a backend nobody stopped (a crashed worker), remove the state folder."""
    state_dir = config.stash.get(_STATE_DIR, None)
    if state_dir is None:
        return
    from loadkit.suite import shared_backend

    shared_backend.stop_leftover(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


def _state_dir(config: pytest.Config) -> Path:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return Path(workerinput[STATE_DIR_KEY])
    return config.stash[_STATE_DIR]


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config):
    """The targets.toml profile: --profile, else LOADTEST_PROFILE, else "default"."""
    from loadkit.verdicts import slo

    try:
        return slo.load_profile(pytestconfig.getoption("--profile"))
    except slo.TargetsError as exc:
        pytest.exit(str(exc), returncode=2)


@pytest.fixture(scope="session")
def run_folder(pytestconfig: pytest.Config) -> Path:
    """The one results folder of this run (shared with xdist workers and child processes)."""
    from loadkit.report.run_folder import run_dir, writable_problem
    from loadkit.suite import shared_backend

    problem = writable_problem()
    if problem:
        pytest.exit(problem, returncode=2)
    return shared_backend.shared_run_dir(_state_dir(pytestconfig), lambda: run_dir("pytest"))


@pytest.fixture(scope="session", autouse=True)
def live_metrics(request: pytest.FixtureRequest):
    """With --metrics-port: serve this process's live metrics (xdist worker gwN on PORT+N) for the
    whole session and a few seconds after; labelled with the run folder's name."""
    port = request.config.getoption("--metrics-port")
    if not port:
        yield None
        return
    from loadkit.measure.live_metrics import MetricsPortError
    from loadkit.suite import live_watch

    workerinput = getattr(request.config, "workerinput", None)
    index = int(workerinput["workerid"].removeprefix("gw")) if workerinput else 0
    try:
        metrics = live_watch.serve(port + index, request.getfixturevalue("run_folder").name)
    except MetricsPortError as exc:
        pytest.exit(str(exc), returncode=2)
    yield metrics
    live_watch.stop()


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config, run_folder: Path, profile) -> targeting.Target:
    """The system under test: --host, or the shared reference backend; checked reachable."""
    from loadkit.report import run_lock
    from loadkit.suite import shared_backend

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
        _join_run_lock(pytestconfig, chosen.url, run_folder)
        yield chosen
    finally:
        run_lock.leave()
        if not options.host:
            shared_backend.release(state_dir)


def _join_run_lock(config: pytest.Config, url: str, run_folder: Path) -> None:
    """Register the run against its target (report/run_lock): runs going on now are warned of,
    and every report names the runs that overlapped it (``concurrent_runs``)."""
    from loadkit.report import run_lock

    others, say = run_lock.join(url, run_folder), _terminal_line(config)
    if others and say is not None:
        say(f"warning: {run_lock.describe(others)}")


@pytest.fixture(scope="session")
def accounts(request: pytest.FixtureRequest, target: targeting.Target, run_folder: Path, profile):
    """The run's accounts (general ones rotate run-wide), the accounts the selected tests will
    take logged in ahead (one worker of xdist: just the first); a wrong password exits 2."""
    from loadkit.suite import session as auth

    config = request.config
    try:
        plan = _plan(config, target, run_folder / ".state" / "account-cursor")
        plan.manager.say = _terminal_line(config) or plan.manager.say
        general, roles = _demand(request.session.items, profile)
        wanted = auth.needed_accounts(plan, general, roles)
        if hasattr(config, "workerinput"):
            wanted = wanted[:1]
        auth.prelogin(plan, wanted or plan.peek(1))
    except auth.AccountsUnusable as exc:
        pytest.exit(str(exc), returncode=2)
    _plan_uploads(request.session.items, profile, plan, run_folder)
    return plan


def _terminal_line(config: pytest.Config):
    """A writer of progress lines to the terminal, past pytest's output capture (None: none)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return None
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock, capture.global_and_fixture_disabled():
            reporter.write_line(f"loadtest: {line}")

    return say


def _plan_uploads(items, profile, plan, run_folder: Path) -> None:
    """Register the selected tests' uploads; the budget is the address's once logins showed it."""
    from loadkit.contract.upload_budget import UploadLedger
    from loadkit.report.run_folder import safe_test_name
    from loadkit.suite import demand

    tests = [item.name for item in items]  # the runner's `all` names the whole run's tests
    tests += [n.split("::")[-1] for n in os.environ.get("LOADTEST_PLANNED_TESTS", "").split()]
    needs = {}
    for test in tests:
        name, _, param = test.removeprefix("test_").partition("[")
        need = demand.upload_demand(name, param.rstrip("]") or None, profile)
        if need:
            needs[safe_test_name(test)] = need
    scarce = plan.manager.limit_shaped() is not None or plan.manager.budget.paced()
    limit = int(profile.scenarios.get("upload_rate_limit", {}).get("limit", 10))
    UploadLedger(run_folder / ".state" / "upload-budget").plan(needs, scarce=scarce, limit=limit)


def _demand(items, profile) -> tuple[int, list[str]]:
    """The general accounts and roles the selected tests will take: with the runner's `all`
    (LOADTEST_PLANNED_TESTS), those of this test and every one after it, so the run's first
    process logs in the whole run's accounts before any probe spends the login budget."""
    from loadkit.suite import demand

    tests = [i.name for i in items if "accounts" in getattr(i, "fixturenames", ())]
    planned = [n.split("::")[-1] for n in os.environ.get("LOADTEST_PLANNED_TESTS", "").split()]
    if tests and tests[0] in planned:
        tests = planned[planned.index(tests[0]) :]
    general, roles = 0, []
    for test in tests:
        name, _, param = test.removeprefix("test_").partition("[")
        n, wanted = demand.account_demand(name, param.rstrip("]") or None, profile)
        general, roles = general + n, roles + wanted
    return general, roles


@pytest.fixture(scope="session")
def server_profile(pytestconfig: pytest.Config, target: targeting.Target, run_folder: Path):
    """The session's one server profile (loadkit.suite.server_profile), ended before the backend."""
    from loadkit.suite.server_profile import session_profile

    worker = getattr(pytestconfig, "workerinput", {}).get("workerid")
    enabled = pytestconfig.getoption("--server-profile")
    with session_profile(run_folder, target, enabled=enabled, worker=worker):
        yield


@pytest.fixture
def drive(
    request: pytest.FixtureRequest, target: targeting.Target, profile, run_folder: Path,
    server_profile: None,
):  # fmt: skip
    """Run a scenario of loadkit.suite for this test, write its report, assert its verdict.

    Without accounts (the baseline); tests that need them pass ``plan=`` (the ``accounts`` fixture).
    """
    from loadkit.report.run_folder import safe_test_name
    from loadkit.suite import harness
    from loadkit.suite.outcome import Outcome, failure_message, reporting

    def run(scenario, *args, plan=None):
        from loadkit.contract.upload_budget import UploadLedger

        outcome = Outcome(safe_test_name(request.node.name), target.url, profile.name)
        ledger = UploadLedger(run_folder / ".state" / "upload-budget")
        ctx = harness.Ctx(target, profile, plan, name=outcome.test_name, uploads=ledger)
        with reporting(outcome, run_folder):
            try:
                harness.run(scenario, ctx, outcome, *args)
            finally:
                if plan is not None:
                    _login_findings(outcome, plan.manager)
        message = failure_message(outcome.thresholds, outcome.problems)
        if message and outcome.defects:
            ids = ", ".join(dict.fromkeys(d["id"] for d in outcome.defects))
            message = f"[defects: {ids}] {message}"
        if message:
            pytest.fail(message, pytrace=False)
        if outcome.skip_reason:
            pytest.skip(outcome.skip_reason)
        return outcome

    return run


def _login_findings(outcome, manager) -> None:
    """The login refusals met since the last report: defects, the login budget, limit_shaped."""
    new = manager.unreported()
    outcome.defects += [d for d in manager.defects(new) if d not in outcome.defects]
    outcome.limit_shaped = outcome.limit_shaped or manager.limit_shaped()
    if outcome.limit_shaped and not getattr(manager, "shaped_said", False):
        manager.shaped_said = True
        manager.say(f"limit_shaped: {outcome.limit_shaped}")
    if new or manager.waited_s:
        outcome.extra["logins"] = {
            "refusals": len(new),
            "waited_for_budget_s": round(manager.waited_s, 1),
            "login_rate": str(manager.budget.rate),
        }
