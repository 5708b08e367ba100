"""Runs against one target from this machine at the same time: detected, stated, never refused.

Every run (the runner, pytest, Locust) registers in ``<results root>/.run-locks/<key>.log``, where
the key names the target (scheme, host and port, lowercased). The log is append-only JSON lines
(``start`` and ``end`` events with pid, run folder and time), written under ``fcntl.flock``, so one
file serves every tool and a crashed run leaves no lock that blocks anyone: a ``start`` whose pid is
gone and that has no ``end`` counts as ended at its start (when it died is not known). Two runs
overlap when each started before the other ended; the figures of both include the other's load, so
each report says so.

    others = run_lock.register(root, target, run_dir)   # the runs going on now
    overlapped = run_lock.release(root, target, run_dir)  # every run that overlapped this one

Entries are per process: the runner and the pytest or Locust processes it starts register the one
run folder under their own pids, and runs are "other" when their folders differ. `join`, `leave`
and `overlapping` are the in-process form (pytest's session, Locust's hooks): the registration is
remembered, so a report written at any moment can name the runs that overlapped it so far.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = ".run-locks"
KEEP_SECONDS = 7 * 24 * 3600  # ended runs older than this are dropped from the log


@dataclass(frozen=True)
class Run:
    """One registered run: who, where its folder is, and when it started and ended (None: going)."""

    pid: int
    run_dir: str
    started: float
    ended: float | None = None

    def overlaps(self, start: float, end: float | None) -> bool:
        """Whether this run and the interval [start, end] (end None: now) shared any moment."""
        mine_end = self.ended if self.ended is not None else time.time()
        other_end = end if end is not None else time.time()
        return self.started <= other_end and start <= mine_end


def target_key(target: str) -> str:
    """The lock key of a target URL: scheme://host:port, lowercased ("http://127.0.0.1:8000")."""
    parts = urllib.parse.urlsplit(target if "://" in target else f"http://{target}")
    scheme = (parts.scheme or "http").lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def log_path(root: Path, target: str) -> Path:
    """The target's log file in the results root."""
    digest = hashlib.sha256(target_key(target).encode()).hexdigest()[:16]
    return Path(root) / LOCK_DIR / f"{digest}.log"


def register(root: Path, target: str, run_dir: Path, pid: int | None = None) -> list[Run]:
    """Record this run's start; return the other runs against the target going on now."""
    pid = os.getpid() if pid is None else pid
    with _locked(log_path(root, target)) as handle:
        runs = _read(handle)
        _compact(handle, runs)
        _append(handle, "start", pid, str(run_dir))
    return _others([r for r in runs.values() if r.ended is None], str(run_dir))


def release(root: Path, target: str, run_dir: Path, pid: int | None = None) -> list[Run]:
    """Record this run's end; return every other run whose time overlapped this one's."""
    pid = os.getpid() if pid is None else pid
    with _locked(log_path(root, target)) as handle:
        runs = _read(handle)
        mine = runs.get((str(run_dir), pid))
        if mine is not None and mine.ended is None:
            _append(handle, "end", pid, str(run_dir))
    if mine is None:
        return []
    # A second release (the runner's exit trap) keeps the first one's end: later runs never count.
    overlapped = [r for r in runs.values() if r.overlaps(mine.started, mine.ended)]
    return _others(overlapped, str(run_dir))


def _others(runs: list[Run], run_dir: str) -> list[Run]:
    """The runs of other folders, one per folder (its first process), in start order."""
    found: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.started):
        if run.run_dir != run_dir:
            found.setdefault(run.run_dir, run)
    return list(found.values())


_joined: tuple[Path, str, Path] | None = None  # this process's registration (root, target, run)


def join(target: str, run_dir: Path) -> list[Run]:
    """Register this process's run (results root: the run folder's parent) and remember it."""
    global _joined
    joined = (Path(run_dir).parent, target, Path(run_dir))
    if joined == _joined:
        return []  # registered already (a second test of one Locust web UI)
    _joined = joined
    return register(*joined)


def leave() -> list[Run]:
    """Release this process's registration (nothing when none): the runs that overlapped it."""
    global _joined
    joined, _joined = _joined, None
    return release(*joined) if joined else []


def overlapping() -> list[str]:
    """The folders of the other runs that overlapped this process's run so far (read only)."""
    if _joined is None:
        return []
    root, target, run_dir = _joined
    path = log_path(root, target)
    if not path.exists():
        return []
    with _locked(path) as handle:
        runs = _read(handle)
    mine = runs.get((str(run_dir), os.getpid()))
    if mine is None:
        return []
    return [
        r.run_dir
        for r in _others(list(runs.values()), str(run_dir))
        if r.overlaps(mine.started, None)
    ]


def describe(runs: list[Run]) -> str:
    """One line naming the concurrent runs, for a report or the terminal ("" when none)."""
    if not runs:
        return ""
    folders = ", ".join(f"{r.run_dir} (pid {r.pid})" for r in runs)
    return (
        f"another run against the same target from this machine overlapped this one: {folders}; "
        "the figures of both include the other's load"
    )


@contextmanager
def _locked(path: Path) -> Iterator:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _append(handle, event: str, pid: int, run_dir: str) -> None:
    record = {"event": event, "pid": pid, "run_dir": run_dir, "at": time.time()}
    handle.write(json.dumps(record) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _read(handle) -> dict[tuple[str, int], Run]:
    """The runs in the log by (folder, pid); a run whose pid died counts as ended at its start."""
    handle.seek(0)
    runs: dict[tuple[str, int], Run] = {}
    for line in handle.read().splitlines():
        try:
            record = json.loads(line)
            pid, folder, at = int(record["pid"]), str(record["run_dir"]), float(record["at"])
        except (ValueError, KeyError, TypeError):
            continue
        key = (folder, pid)
        if record.get("event") == "start":
            runs[key] = Run(pid, folder, at)
        elif key in runs:
            runs[key] = Run(pid, folder, runs[key].started, at)
    now = time.time()
    for key, run in list(runs.items()):
        if run.ended is None and not process_alive(run.pid):
            runs[key] = Run(run.pid, run.run_dir, run.started, run.started)
        if runs[key].ended is not None and now - runs[key].ended > KEEP_SECONDS:
            del runs[key]
    return runs


def _compact(handle, runs: dict[tuple[str, int], Run]) -> None:
    """Rewrite the log with only the runs still kept (ended ones past KEEP_SECONDS are gone)."""
    handle.seek(0)
    handle.truncate()
    for run in runs.values():
        handle.write(
            json.dumps(
                {"event": "start", "pid": run.pid, "run_dir": run.run_dir, "at": run.started}
            )
            + "\n"
        )
        if run.ended is not None:
            handle.write(
                json.dumps(
                    {"event": "end", "pid": run.pid, "run_dir": run.run_dir, "at": run.ended}
                )
                + "\n"
            )


def process_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a zombie has ended; its parent has not
    reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
    return True
