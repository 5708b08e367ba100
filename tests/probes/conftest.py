"""Fixtures for the probe tests: a fake API with one defect, an accounts file, a suite runner."""

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
FAKE_API = Path(__file__).with_name("fake_api.py")


@dataclass
class Fake:
    """A running fake API: its URL and pid."""

    url: str
    pid: int


@dataclass
class SuiteRun:
    """A pytest run of the probes: exit code, output, and its reports by file name."""

    returncode: int
    output: str
    reports: dict[str, dict]


@pytest.fixture
def fake_api(request: pytest.FixtureRequest) -> Iterator[Fake]:
    """The fake API with the defect named by the test's (indirect) parameter."""
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_API), "--defect", request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake API ({request.param}) did not start: {line!r}")
        yield Fake(f"http://127.0.0.1:{int(line.split()[1])}", proc.pid)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def accounts_file(tmp_path: Path) -> Path:
    """Twenty fake accounts: enough to reserve the rate-limit and probe accounts."""
    path = tmp_path / "accounts.json"
    rows = [{"email": f"acct-{i:02d}@example.com", "password": "Fake@Pass1234"} for i in range(20)]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture
def run_probes(tmp_path: Path):
    """Run ``pytest pytest_load_test.py -k SELECTION --profile ci ARGS`` in a subprocess."""

    def run(selection: str, *args: str, timeout_s: float = 300.0) -> SuiteRun:
        root = tmp_path / "results"
        env = {**os.environ, "LOADTEST_RESULTS_ROOT": str(root)}
        for name in ("LOADTEST_RUN_DIR", "LOADTEST_PROFILE", "LOADTEST_ACCOUNTS", "PYTEST_ADDOPTS"):
            env.pop(name, None)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                   "pytest_load_test.py", "-k", selection, "--profile", "ci", *args]  # fmt: skip
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
        )
        reports = {p.name: json.loads(p.read_text()) for p in root.glob("*/*.json")}
        return SuiteRun(done.returncode, done.stdout + done.stderr, reports)

    return run
