"""One reference backend and one run folder shared by every process of a pytest run (xdist too).

The controller (or the lone pytest process) makes a private state directory and hands it to workers.
The first process that needs the backend starts it, under a file lock, on a free port with a fresh
SQLite file in the run folder, and publishes its URL and pid in ``backend.json``; each user
increments a count and decrements it when done, and the last one out stops the server. The
controller stops whatever is still recorded at the end (a crashed worker cannot leave a server
behind). The run folder is chosen the same way, once, and published in ``run_dir.txt``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from filelock import FileLock

STATE_FILE = "backend.json"
RUN_DIR_FILE = "run_dir.txt"
LOCK_FILE = "state.lock"
LOCK_TIMEOUT_S = 300.0
_started: dict[int, object] = {}  # pid -> BackendProcess, kept so this process can reap its child


@dataclass(frozen=True)
class SharedBackend:
    """The URL and pid of the shared reference backend."""

    url: str
    pid: int


def _lock(state_dir: Path) -> FileLock:
    return FileLock(str(state_dir / LOCK_FILE), timeout=LOCK_TIMEOUT_S)


def _read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_state(state_dir: Path, state: dict) -> None:
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(state_dir / STATE_FILE)


def shared_run_dir(state_dir: Path, make_run_dir) -> Path:
    """The run folder: made once by ``make_run_dir()``, then read by every process."""
    with _lock(state_dir):
        published = state_dir / RUN_DIR_FILE
        if published.exists():
            run_dir = Path(published.read_text(encoding="utf-8").strip())
        else:
            run_dir = Path(make_run_dir())
            published.write_text(str(run_dir), encoding="utf-8")
    os.environ["LOADTEST_RUN_DIR"] = str(run_dir)
    return run_dir


def backend_env(run_dir: Path) -> dict[str, str]:
    """Environment for the bundled backend: LOADTEST_DATABASE_URL (e.g. a PostgreSQL database) when
    set, else a new SQLite file; uploads in the run folder."""
    database = os.environ.get("LOADTEST_DATABASE_URL") or f"sqlite:///{run_dir / 'backend.db'}"
    return {
        "DATABASE_URL": database,
        "UPLOAD_DIR": str(run_dir / "backend_uploads"),
    }


def acquire(state_dir: Path, run_dir: Path, start) -> SharedBackend:
    """Join the shared backend; start it with ``start(env=..., log_path=...)`` if none runs."""
    with _lock(state_dir):
        state = _read_state(state_dir)
        if state is None or not psutil.pid_exists(state["pid"]):
            proc = start(env=backend_env(run_dir), log_path=run_dir / "backend.log")
            _started[proc.pid] = proc
            state = {"url": proc.url, "pid": proc.pid, "users": 0}
        state["users"] += 1
        _write_state(state_dir, state)
    return SharedBackend(url=state["url"], pid=state["pid"])


def release(state_dir: Path) -> None:
    """Leave the shared backend; the last user stops it."""
    with _lock(state_dir):
        state = _read_state(state_dir)
        if state is None:
            return
        state["users"] -= 1
        if state["users"] > 0:
            _write_state(state_dir, state)
            return
        _stop(state["pid"])
        (state_dir / STATE_FILE).unlink(missing_ok=True)


def stop_leftover(state_dir: Path) -> None:
    """Stop a backend still recorded in ``state_dir`` (end of the run: nobody uses it now)."""
    with _lock(state_dir):
        state = _read_state(state_dir)
        if state is not None:
            _stop(state["pid"])
            (state_dir / STATE_FILE).unlink(missing_ok=True)


def _stop(pid: int, timeout_s: float = 10.0) -> None:
    """Stop the server: through its BackendProcess when this process started it, else by signal."""
    proc = _started.pop(pid, None)
    if proc is not None:
        proc.stop()
        return
    if not _signal(pid, signal.SIGTERM):
        return
    if not _gone_within(pid, timeout_s):
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> bool:
    """Signal the server's process group when it leads one (uvicorn workers too); False: gone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _gone_within(pid: int, timeout_s: float) -> bool:
    """Whether ``pid`` exits (or is a zombie awaiting its parent) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
