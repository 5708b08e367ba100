"""The pytest run's server profile: one recording over the whole session's steady part.

Started when the first scenario needs the target (after the backend is up and checked), stopped
when the session ends, before the backend stops. One recording per session, not per scenario:
py-spy attaches and loads the server's native symbols once, and the route groups already tell
the scenarios' work apart. Under pytest-xdist only worker gw0 records (every worker loads the same
server at the same time, so its session spans the run); the `all` preset's one process per
scenario appends to the run folder's one recording (loadkit.report.server_profile).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadkit.report.server_profile import write_profile
from loadkit.watch.server_profile import profiler_for

RECORDING_WORKER = "gw0"


@contextmanager
def session_profile(
    run_folder: Path, target: object, *, enabled: bool | None, worker: str | None
) -> Iterator[None]:
    """Record the server for the body's duration and write the run's profile (or its reason)."""
    if worker not in (None, RECORDING_WORKER):
        yield
        return
    pid, reason = getattr(target, "server_pid", None), getattr(target, "resources_reason", None)
    profiler = profiler_for(run_folder, enabled=enabled, pid=pid, unavailable=reason)
    profiler.start()
    try:
        yield
    finally:
        write_profile(run_folder, profiler.stop())
