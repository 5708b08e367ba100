"""The bundled reference backend for a capacity search: its limits raised out of the way (the
report says so), N worker processes, and a throw-away Redis for their shared limiter.

Redis runs on a free loopback port with no persistence, in a temporary folder, and is stopped
afterwards; `redis_problem` is the one line a search gets when ``redis-server`` is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reference_backend.process import BackendProcess, free_port, start_backend

RAISED_LIMIT = "1000000/minute"
LIMITS = ("DEFAULT", "LOGIN", "SIGNUP", "REFRESH", "UPLOAD", "EXTRACT")
LIMITS_NOTE = (
    "the bundled backend ran with every rate limit raised to " + RAISED_LIMIT + " (RATE_LIMIT_*),"
    " so the knee found is the server's, not its limiter's"
)
REDIS_WAIT_S = 10.0


def redis_problem(workers: list[int]) -> str | None:
    """None when the worker counts can run, else the one line saying why not."""
    if max(workers) > 1 and shutil.which("redis-server") is None:
        return (
            "capacity: --server-workers above 1 needs redis-server for the workers' shared "
            "limiter, and none is installed (apt-get install redis-server)"
        )
    return None


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away Redis on 127.0.0.1 (no persistence); yields its URL."""
    folder = Path(tempfile.mkdtemp(prefix="tb-capacity-redis-"))
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(folder)]  # fmt: skip
    log = (folder / "redis.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int, proc: subprocess.Popen) -> None:
    import socket

    deadline = time.monotonic() + REDIS_WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{port}")


def backend_env(run_dir: Path, workers: int, redis_url: str | None) -> dict[str, str]:
    """The backend's settings: a fresh SQLite file, raised limits, Redis with several workers."""
    env = {
        "DATABASE_URL": f"sqlite:///{run_dir / f'therapybridge-w{workers}.db'}",
        "UPLOAD_DIR": str(run_dir / f"uploads-w{workers}"),
        "LOG_LEVEL": "warning",
        **{f"RATE_LIMIT_{name}": RAISED_LIMIT for name in LIMITS},
    }
    if redis_url:
        env["RATE_LIMIT_STORAGE"] = redis_url
        env["RATE_LIMIT_KEY_PREFIX"] = f"tb-capacity-{uuid.uuid4().hex}:"
    return env


@contextmanager
def bundled_backend(run_dir: Path, workers: int) -> Iterator[BackendProcess]:
    """The reference backend with ``workers`` processes (and Redis when more than one)."""
    log = run_dir / (f"server-w{workers}.log" if workers > 1 else "server.log")
    with redis_server() if workers > 1 else _nothing() as redis_url:
        backend = start_backend(env=backend_env(run_dir, workers, redis_url), workers=workers,
                                log_path=log, timeout=120)  # fmt: skip
        try:
            yield backend
        finally:
            backend.stop()


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
