"""Fixtures for the Locust tests: a reference backend on a fresh SQLite file, and Locust as a
subprocess.

Nothing here imports Locust (it monkey-patches the process with gevent): every run is `locust` in a
child process, with LOADTEST_RUN_DIR pointing at the test's own folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_backend.process import BackendProcess, start_backend

REPO = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", str(REPO / "load_test.py")]
SEED_ACCOUNTS = 30
RUN_TIMEOUT_S = 180


def _seeded_backend(folder: Path, **settings: str) -> Iterator[BackendProcess]:
    """A seeded reference backend in ``folder`` with cheap password hashing (bcrypt rounds 4)."""
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'therapybridge.db'}",
        "BCRYPT_ROUNDS": "4",
        "SEED_ACCOUNTS": str(SEED_ACCOUNTS),
        "UPLOAD_DIR": str(folder / "uploads"),
        # Every test run logs the same seed accounts in again: more than 5 runs a minute would
        # (rightly) be refused by the login limit, which is not what these tests are about.
        "RATE_LIMIT_LOGIN": "1000/minute",
        **settings,
    }
    server = start_backend(env=env, log_path=folder / "backend.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """The reference backend, seeded, with cheap password hashing (bcrypt rounds 4)."""
    yield from _seeded_backend(tmp_path_factory.mktemp("backend"))


@pytest.fixture(scope="module")
def deployed_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """The reference backend behaving like the deployed service (REFERENCE_BEHAVIOUR=deployed:
    no default limit, therapist_id required, ...), logins not limited for these tests."""
    yield from _seeded_backend(tmp_path_factory.mktemp("deployed"), REFERENCE_BEHAVIOUR="deployed")


def locust_env(run_dir: Path, **extra: str) -> dict[str, str]:
    """The child's environment: its own run folder, the backend's seed accounts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LOADTEST_"))}
    env.update(LOADTEST_RUN_DIR=str(run_dir), SEED_ACCOUNTS=str(SEED_ACCOUNTS), **extra)
    env.setdefault("LOADTEST_TOKEN_CACHE", str(run_dir.parent / f"{run_dir.name}-tokens.json"))
    return env


def stack_of(pid: int) -> str:
    """Every thread's stack of a live process (py-spy dump), for a test whose child hung."""
    from loadkit.watch.server_profile import py_spy

    binary = py_spy()
    if binary is None:
        return "(py-spy not installed: no stack)"
    try:
        done = subprocess.run([binary, "dump", "--pid", str(pid)], capture_output=True,
                              text=True, timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "(py-spy dump did not answer in 30 s)"
    return (done.stdout + done.stderr)[-6000:]


def locust_command(host: str, *args: str) -> list[str]:
    """A locust command line against ``host`` (the repository's locust.conf applies, as for
    users)."""
    return [*LOCUST, "--host", host, *args]


def run_locust(
    host: str, run_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run Locust to completion (bounded) and return its exit code and output."""
    return subprocess.run(
        locust_command(host, *args),
        cwd=REPO,
        env=env or locust_env(run_dir),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def locust_buckets_p95(stats_json: list[dict]) -> tuple[int, float]:
    """(requests, p95 ms) recomputed from Locust's own rounded response-time buckets
    (--json-file)."""
    buckets: dict[float, int] = {}
    total = 0
    for entry in stats_json:
        total += entry["num_requests"]
        for value, count in entry["response_times"].items():
            buckets[float(value)] = buckets.get(float(value), 0) + count
    rank, seen = -(-95 * sum(buckets.values()) // 100), 0
    for value in sorted(buckets):
        seen += buckets[value]
        if seen >= rank:
            return total, value
    raise AssertionError("no response time recorded by Locust")
