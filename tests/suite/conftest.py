"""Fixtures for testing the load suites: fake servers with defects, and a suite runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE_SERVER = Path(__file__).with_name("fake_server.py")
START_TIMEOUT_S = 20.0
CLEARED_ENV = ("LOADTEST_RUN_DIR", "LOADTEST_PROFILE", "LOADTEST_ACCOUNTS", "PYTEST_ADDOPTS",
               "LOADTEST_LOGIN_RATE", "LOADTEST_NO_TOKEN_CACHE", "LOADTEST_TOKENS",
               "LOADTEST_PLANNED_TESTS")  # fmt: skip


@dataclass
class FakeServer:
    """A running fake server: its URL and pid."""

    url: str
    pid: int


@dataclass
class SuiteRun:
    """What a pytest run of the load suites did: exit code, output, and the reports it wrote."""

    returncode: int
    output: str
    reports: dict[str, dict]
    results_root: Path


def _start_fake(defect: str) -> tuple[subprocess.Popen, FakeServer]:
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), "--defect", defect],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""  # the server prints its port first
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"fake server ({defect}) did not start: {line!r}")
    return proc, FakeServer(f"http://127.0.0.1:{int(line.split()[1])}", proc.pid)


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    """A fake server with the defect named by the test's parameter (indirect)."""
    proc, server = _start_fake(request.param)
    try:
        yield server
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def accounts_file(tmp_path: Path) -> Path:
    """A JSON list of test accounts for the fake servers (any password logs in)."""
    path = tmp_path / "accounts.json"
    accounts = [
        {"email": f"suite-{i:02d}@example.com", "password": "Suite@Pass123"} for i in range(16)
    ]
    path.write_text(json.dumps(accounts), encoding="utf-8")
    return path


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
