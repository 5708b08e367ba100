"""Fixtures for the fault tests: servers the test controls, and the three tools as subprocesses.

Servers: `chaos` (tests/faults/chaos_server.py, faults on schedule, a JSON-lines log) and
`reference` (the reference backend on a fresh SQLite file, cheap hashing, seeded). Tools: the load
suites (`suite_command`), headless Locust (`locust_command`) and run_load_tests.sh
(`runner_command`), run to the end by `run_tool` or in the `background`; each bounded in time,
with results under the test's own folder and LOADTEST_TARGETS pointing at
tests/faults/targets.toml (profile ``faults``). Nothing here imports Locust.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from reference_backend.process import BackendProcess
from tests.backends import CONTRACT_LIMITS

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TARGETS = HERE / "targets.toml"
SEED_ACCOUNTS = 12
TOOL_TIMEOUT_S = 120.0


@dataclass
class ChaosServer:
    """A running chaos server: URL, port, process and its log."""

    url: str
    port: int
    proc: subprocess.Popen
    log: Path

    def entries(self) -> list[dict]:
        """Every line of the log so far."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def faults(self) -> dict[str, int]:
        """How many requests got each fault."""
        counts: dict[str, int] = {}
        for entry in self.entries():
            if entry.get("fault"):
                counts[entry["fault"]] = counts.get(entry["fault"], 0) + 1
        return counts


def start_chaos(
    log: Path, *, faults: str = "", every: int = 5, stall_s: float = 30.0, paths: str = ""
) -> ChaosServer:
    """Start the chaos server and wait for its port line."""
    command = [sys.executable, str(HERE / "chaos_server.py"), "--log", str(log),
               "--faults", faults, "--every", str(every), "--stall-s", str(stall_s)]  # fmt: skip
    if paths:
        command += ["--paths", paths]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait(10)
        raise RuntimeError(f"chaos server did not start: {line!r}")
    port = int(line.split()[1])
    return ChaosServer(f"http://127.0.0.1:{port}", port, proc, log)


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[Callable[..., ChaosServer]]:
    """A factory of chaos servers (keyword arguments of `start_chaos`), all stopped afterwards."""
    started: list[ChaosServer] = []

    def make(**kw) -> ChaosServer:
        server = start_chaos(tmp_path / f"chaos-{len(started)}.log", **kw)
        started.append(server)
        return server

    yield make
    for server in started:
        server.proc.kill()
        server.proc.wait(10)
        if server.proc.stdout:
            server.proc.stdout.close()


# The reference backend for fault tests: the contract's limits but a roomy login limit, seeded.
FAULTS_ENV = {
    **CONTRACT_LIMITS,
    "SEED_ACCOUNTS": str(SEED_ACCOUNTS),
    "RATE_LIMIT_LOGIN": "1000/minute",
}


@pytest.fixture
def reference(backend_factory) -> Callable[..., BackendProcess]:
    """A factory of reference backends (extra settings as keywords; tests/conftest.py's factory,
    so each gets a fresh SQLite file and all stop afterwards)."""

    def make(**extra: str) -> BackendProcess:
        return backend_factory(base=FAULTS_ENV, **extra).process

    return make


def tool_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The child's environment: results under tmp_path, the faults targets, no inherited run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_"))}
    env.pop("PYTEST_ADDOPTS", None)
    env.update(
        LOADTEST_RESULTS_ROOT=str(tmp_path / "results"),
        LOADTEST_TARGETS=str(TARGETS),
        LOADTEST_PROFILE="faults",
        SEED_ACCOUNTS=str(SEED_ACCOUNTS),
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def suite_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def locust_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(REPO / "load_test.py"), "--headless", *args]


def runner_command(*args: str) -> list[str]:
    return ["bash", str(REPO / "run_load_tests.sh"), *args]


@dataclass
class Done:
    """A finished tool run: exit code, output (stdout + stderr), wall time, its reports."""

    returncode: int
    output: str
    seconds: float
    results: Path
    reports: dict[str, dict] = field(default_factory=dict)


def reports_under(root: Path) -> dict[str, dict]:
    """Every JSON report under ``root`` by file name; parsing proves each one is whole."""
    found = {}
    for path in sorted(root.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "schema" in data:
            found[path.name] = data
    return found


def run_tool(command: list[str], tmp_path: Path, *, timeout_s: float = TOOL_TIMEOUT_S, **env):
    """Run a tool to completion (bounded) with `tool_env`; its `Done`."""
    started = time.monotonic()
    proc = subprocess.run(
        command,
        cwd=REPO,
        env=tool_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    root = tmp_path / "results"
    reports = reports_under(root) if root.exists() else {}
    return Done(
        proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started, root, reports
    )


class Background:
    """A tool started in its own process group, to be signalled or waited for (bounded)."""

    def __init__(self, command: list[str], tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=tool_env(tmp_path, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def interrupt(self, *, group: bool = False) -> None:
        """Ctrl-C: SIGINT to the process (or, like a terminal, to its whole group)."""
        if group:
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout_s: float = TOOL_TIMEOUT_S) -> Done:
        """Wait for the end (killing the group past ``timeout_s``); its `Done`."""
        try:
            out, _ = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate(timeout=30)
            raise AssertionError(f"still running after {timeout_s} s:\n{out[-3000:]}") from None
        root = self.tmp_path / "results"
        reports = reports_under(root) if root.exists() else {}
        seconds = time.monotonic() - self.started
        return Done(self.proc.returncode, out, seconds, root, reports)

    def kill(self) -> None:
        """Stop the whole group now (cleanup after a failed assertion)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate(timeout=30)


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Callable[..., Background]]:
    """Start tools in the background; any still running at the end are killed."""
    started: list[Background] = []

    def start(command: list[str], **env: str) -> Background:
        started.append(Background(command, tmp_path, **env))
        return started[-1]

    yield start
    for item in started:
        item.kill()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def assert_one_line_error(done: Done, *needles: str) -> None:
    """A refusal: non-zero exit, no traceback, one line holding every needle."""
    assert done.returncode != 0, done.output[-3000:]
    assert "Traceback" not in done.output, done.output[-3000:]
    lines = [line for line in done.output.splitlines() if all(n in line for n in needles)]
    assert lines, f"no line with {needles!r} in:\n{done.output[-3000:]}"


def connections_of(pid: int) -> list:
    """The inet connections of a process and its children (gone processes are skipped)."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for proc in procs:
        try:
            found += proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def talks_to(pid: int, port: int) -> bool:
    """Whether the process (or a child) has a connection open to 127.0.0.1:``port``."""
    return any(c.raddr and c.raddr.port == port for c in connections_of(pid))
