"""Fixtures of the capacity tests: the FIFO server of known capacity, and a capacity run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backends import write_accounts

REPO = Path(__file__).resolve().parents[2]
FIFO_SERVER = Path(__file__).with_name("fifo_server.py")


@dataclass
class FifoServer:
    """A running FIFO server: its URL and its true capacity."""

    url: str
    capacity_rps: float
    pid: int


@pytest.fixture
def fifo_server(request) -> Iterator[FifoServer]:
    """The FIFO server with the test's ``service_ms`` (param, default 25 ms), stopped after."""
    service_ms = float(getattr(request, "param", 25.0))
    proc = subprocess.Popen([sys.executable, str(FIFO_SERVER), "--service-ms", str(service_ms)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("port "), f"the FIFO server did not start: {line!r}"
        yield FifoServer(f"http://127.0.0.1:{line.split()[1]}", 1000.0 / service_ms, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class CapacityRun:
    """A finished capacity run: exit code, output, and its capacity.json."""

    code: int
    output: str
    report: dict | None


def capacity_env(tmp_path: Path) -> dict[str, str]:
    """A run's environment: results and token cache in ``tmp_path``, no LOADTEST_ leftovers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADTEST_")}
    env.update(LOADTEST_RESULTS_ROOT=str(tmp_path / "results"), NO_COLOR="1",
               LOADTEST_TOKEN_CACHE=str(tmp_path / "cache" / "tokens.json"))  # fmt: skip
    return env


def run_capacity(tmp_path: Path, command: list[str], timeout_s: float) -> CapacityRun:
    """Run ``command`` (the CLI or the runner) and read the capacity.json it wrote."""
    done = subprocess.run(command, cwd=REPO, env=capacity_env(tmp_path), capture_output=True,
                          text=True, timeout=timeout_s)  # fmt: skip
    found = sorted((tmp_path / "results").glob("*/capacity.json"))
    report = json.loads(found[-1].read_text()) if found else None
    return CapacityRun(done.returncode, done.stdout + done.stderr, report)


@pytest.fixture
def accounts_file(tmp_path: Path) -> Path:
    """Four seed accounts (two stay general beside the two reserved ones)."""
    return write_accounts(tmp_path / "accounts.json", 4)
