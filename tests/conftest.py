"""Fixtures shared by the project's tests: reference backends, plain or with a planted defect,
and a runner of the load suites as a user runs them (pytest in a subprocess)."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backends import CONTRACT_LIMITS, Backend, running_backend, write_accounts

REPO = Path(__file__).resolve().parents[1]
SUITE_ACCOUNTS = 24
CLEARED_ENV = ("LOADTEST_RUN_DIR", "LOADTEST_PROFILE", "LOADTEST_ACCOUNTS", "PYTEST_ADDOPTS",
               "LOADTEST_LOGIN_RATE", "LOADTEST_NO_TOKEN_CACHE", "LOADTEST_TOKENS",
               "LOADTEST_PLANNED_TESTS")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Give the processes the tests start the default SIGINT and SIGHUP, however this pytest was
    started: a background job of a script (``cmd &``) begins with SIGINT ignored and ``nohup``
    with SIGHUP ignored, and children inherit that, so the Ctrl-C and hang-up tests would test
    the launcher, not the suite. A Python handler becomes the default action across exec."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda *_: None)


# The files that take a minute or more (serial durations from --junitxml on the 2-core machine:
# 128, 90, 82, 61 and 61 s). Under xdist they start first, so that none starts last and leaves
# one worker busy alone at the end; then the files with slow tests, then the rest.
LONGEST_FILES = ("suite/test_suite_deployed.py", "capacity/test_capacity_known.py",
                 "soak/test_compressed_soak.py", "locust/test_locust_headless.py",
                 "faults/test_endings.py")  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist (run_tests.sh: ``-n 2 --dist loadfile --no-loadscope-reorder``), the longest
    files first; each file's tests stay together and in their order."""
    if not config.getoption("numprocesses", default=None):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        here = item.path.relative_to(REPO).as_posix() if item.path.is_relative_to(REPO) else ""
        relative = here.removeprefix("tests/")
        if relative in LONGEST_FILES:
            return LONGEST_FILES.index(relative)
        return len(LONGEST_FILES) + (0 if item.path in slow else 1)

    items.sort(key=rank)  # stable: within a file, the collected order


@pytest.fixture
def backend_factory(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    """Start reference backends (settings as keywords, None unsets one); all stop afterwards.

    ``backend_factory(workers=2, base=DEPLOYED_ENV, LIMIT_KEY="address")``: FAST_ENV, then
    ``base``, then the keywords.
    """
    started: list[Backend] = []
    with ExitStack() as stack:

        def start(*, workers: int = 1, base: dict | None = None, **env: str | None) -> Backend:
            folder = tmp_path / f"backend-{len(started)}"
            folder.mkdir()
            merged = {**(base or {}), **env}
            started.append(stack.enter_context(running_backend(folder, merged, workers=workers)))
            return started[-1]

        yield start


@pytest.fixture
def planted(backend_factory, tmp_path: Path) -> Callable[..., list[str]]:
    """Start the reference backend with the settings that plant one defect; the suite's arguments.

    Contract limits (the suites judge them), SUITE_ACCOUNTS seed accounts in an accounts file, and
    the server's pid: ``--host URL --accounts FILE --server-pid PID``.
    """

    def start(**setting: str) -> list[str]:
        env = {"SEED_ACCOUNTS": str(SUITE_ACCOUNTS), **setting}
        backend = backend_factory(base=CONTRACT_LIMITS, **env)
        accounts = write_accounts(tmp_path / "accounts.json", SUITE_ACCOUNTS)
        pid = str(backend.pid)
        return ["--host", backend.url, "--accounts", str(accounts), "--server-pid", pid]

    return start


@dataclass
class SuiteRun:
    """What a pytest run of the load suites did: exit code, output, and the reports it wrote."""

    returncode: int
    output: str
    reports: dict[str, dict]
    results_root: Path


@pytest.fixture
def run_suite(tmp_path: Path):
    """Run ``pytest ARGS`` in the repository root as a subprocess; results go under tmp_path."""

    def run(*args: str, timeout_s: float = 600.0) -> SuiteRun:
        root = tmp_path / "results"
        env = {**os.environ, "LOADTEST_RESULTS_ROOT": str(root)}
        env["LOADTEST_TOKEN_CACHE"] = str(tmp_path / "token-cache" / "tokens.json")
        for name in CLEARED_ENV:
            env.pop(name, None)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
        )
        return SuiteRun(done.returncode, done.stdout + done.stderr, _reports(root), root)

    return run


def _reports(root: Path) -> dict[str, dict]:
    """Every JSON report under ``root`` by file name (folder name prefixed when several folders)."""
    reports = {}
    for path in sorted(root.glob("*/*.json")):
        reports[path.name] = json.loads(path.read_text(encoding="utf-8")) | {
            "_dir": path.parent.name
        }
    return reports
