"""One backend per pytest run: started once under a lock, stopped by its last user or the run."""

import subprocess
import sys
from dataclasses import dataclass

import psutil

from loadkit.suite import shared_backend


@dataclass
class _Started:
    url: str
    pid: int
    popen: subprocess.Popen

    def stop(self) -> None:
        self.popen.kill()
        self.popen.wait(10)


def _starter(calls: list):
    def start(*, env, log_path):
        calls.append(env)
        popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return _Started("http://127.0.0.1:1", popen.pid, popen)

    return start


def test_started_once_and_stopped_by_the_last_user(tmp_path):
    """Two users share one server (one start, fresh SQLite in the run folder); the last stops it."""
    calls: list = []
    first = shared_backend.acquire(tmp_path, tmp_path, _starter(calls))
    second = shared_backend.acquire(tmp_path, tmp_path, _starter(calls))
    assert first == second and len(calls) == 1
    assert calls[0]["DATABASE_URL"] == f"sqlite:///{tmp_path / 'backend.db'}"
    shared_backend.release(tmp_path)
    assert psutil.pid_exists(first.pid)
    shared_backend.release(tmp_path)
    assert not psutil.pid_exists(first.pid)


def test_the_controller_stops_a_leftover(tmp_path):
    """A server a crashed worker never released is stopped at the end of the run."""
    backend = shared_backend.acquire(tmp_path, tmp_path, _starter([]))
    shared_backend.stop_leftover(tmp_path)
    assert not psutil.pid_exists(backend.pid)


def test_the_run_folder_is_made_once(tmp_path, monkeypatch):
    """Every process of a run reads the same run folder; it is created by the first one only."""
    monkeypatch.setenv("LOADTEST_RUN_DIR", "")  # recorded, so the value set below is undone
    monkeypatch.delenv("LOADTEST_RUN_DIR")
    made: list = []

    def make():
        made.append(1)
        return tmp_path / "run"

    assert shared_backend.shared_run_dir(tmp_path, make) == tmp_path / "run"
    assert shared_backend.shared_run_dir(tmp_path, make) == tmp_path / "run"
    assert len(made) == 1
