"""Run the reference backend as a subprocess: used by the root conftest, the runner and tests."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

POLL_INTERVAL = 0.1
LOG_TAIL_LINES = 30


@dataclass
class BackendProcess:
    """A running backend: where it listens, its process and its log."""

    url: str
    port: int
    pid: int
    log_path: Path
    popen: subprocess.Popen

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL to the process group after ``timeout``; safe to call twice."""
        if self.popen.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.popen.wait(timeout)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)  # the backend leads its own group (workers included)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the backend's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_healthy(backend: BackendProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backend.popen.poll() is not None:
            raise RuntimeError(
                f"backend exited with status {backend.popen.returncode}:\n{backend.log_tail()}"
            )
        if _health_ok(backend.url):
            return
        time.sleep(POLL_INTERVAL)
    backend.stop()
    raise RuntimeError(f"backend not healthy within {timeout:g} s:\n{backend.log_tail()}")


def start_backend(
    *,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    workers: int = 1,
    log_path: Path | None = None,
    timeout: float = 60.0,
) -> BackendProcess:
    """Start `python -m reference_backend` on 127.0.0.1 and wait until /health answers 200."""
    port = port or free_port()
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="reference_backend_", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    child_env = {**os.environ, **(env or {})}
    package_root = str(Path(__file__).resolve().parent.parent)  # importable from any cwd
    python_path = child_env.get("PYTHONPATH", "")
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, python_path) if p)
    command = [sys.executable, "-m", "reference_backend", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            command, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    backend = BackendProcess(f"http://127.0.0.1:{port}", port, popen.pid, log_path, popen)
    try:
        _wait_healthy(backend, timeout)
    except BaseException:
        backend.stop()
        raise
    return backend
