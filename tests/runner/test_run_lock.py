"""loadkit.report.run_lock: two runs against one target from this machine know of each other.

Each "run" is a real process (a bounded sleep) registered under its own pid, so liveness is checked
against the kernel, not a stub. Nothing here sends any traffic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit.report import run_lock

TARGET = "http://127.0.0.1:8123"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process whose pid stands for another run."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_second_run_sees_first_and_first_learns_of_second(tmp_path: Path, sleeper) -> None:
    """A run started while another is going sees it at register; the first sees it at release."""
    first, second = tmp_path / "run-a", tmp_path / "run-b"
    assert run_lock.register(tmp_path, TARGET, first, pid=sleeper.pid) == []
    others = run_lock.register(tmp_path, "http://127.0.0.1:8123/api", second)
    assert [r.run_dir for r in others] == [str(first)]
    assert [r.run_dir for r in run_lock.release(tmp_path, TARGET, second)] == [str(first)]
    # The second ended before the first: the first still learns that it overlapped.
    overlapped = run_lock.release(tmp_path, TARGET, first, pid=sleeper.pid)
    assert [r.run_dir for r in overlapped] == [str(second)]
    assert "the figures of both include the other's load" in run_lock.describe(overlapped)


def test_other_target_and_ended_runs_do_not_count(tmp_path: Path, sleeper) -> None:
    """Another port is another target; a run that ended before this one started never overlapped."""
    run_lock.register(tmp_path, "http://127.0.0.1:9999", tmp_path / "other", pid=sleeper.pid)
    run_lock.register(tmp_path, TARGET, tmp_path / "early", pid=sleeper.pid)
    run_lock.release(tmp_path, TARGET, tmp_path / "early", pid=sleeper.pid)
    assert run_lock.register(tmp_path, TARGET, tmp_path / "late") == []
    assert run_lock.release(tmp_path, TARGET, tmp_path / "late") == []


def test_crashed_run_leaves_no_lock(tmp_path: Path) -> None:
    """A run whose process died without releasing is not reported as going on."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    run_lock.register(tmp_path, TARGET, tmp_path / "crashed", pid=dead.pid)
    assert run_lock.register(tmp_path, TARGET, tmp_path / "next") == []


def test_an_unreaped_run_has_ended(tmp_path: Path) -> None:
    """A run process that exited but is not reaped yet (a zombie) is not going on."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(100):  # bounded: up to 10 s for it to exit, left unreaped
        if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.1)
    try:
        assert not run_lock.process_alive(zombie.pid)
        run_lock.register(tmp_path, TARGET, tmp_path / "exited", pid=zombie.pid)
        assert run_lock.register(tmp_path, TARGET, tmp_path / "next") == []
    finally:
        zombie.wait(timeout=10)
    assert run_lock.process_alive(os.getpid())


def test_target_key_normalises_the_url() -> None:
    """Scheme, host case, default port and path do not make a different target."""
    assert run_lock.target_key("HTTP://LocalHost/api") == "http://localhost:80"
    assert run_lock.target_key("https://example.test") == "https://example.test:443"
    assert run_lock.target_key("127.0.0.1:8000") == "http://127.0.0.1:8000"


def test_processes_of_one_run_are_not_other_runs(tmp_path: Path, sleeper) -> None:
    """The runner and the pytest or Locust process it starts register one folder under two pids:
    neither is another run; this process's join / overlapping / leave name only a third run."""
    mine, other = tmp_path / "run-a", tmp_path / "run-b"
    run_lock.register(tmp_path, TARGET, mine, pid=sleeper.pid)  # the runner of this run
    assert run_lock.join(TARGET, mine) == []  # results root: the folder's parent
    assert run_lock.overlapping() == []
    run_lock.register(tmp_path, TARGET, other, pid=sleeper.pid)
    assert run_lock.overlapping() == [str(other)]
    assert [r.run_dir for r in run_lock.leave()] == [str(other)]
    assert run_lock.overlapping() == []  # left: nothing to name any more
    others = run_lock.register(tmp_path, TARGET, tmp_path / "run-c")
    assert sorted(r.run_dir for r in others) == [str(mine), str(other)]  # the runner still runs
