"""One progress line every few seconds for a headless Locust run (the runner's quiet terminal).

Locust's own headless output is its stats table every 2 s; the runner passes ``--only-summary`` to
stop it and ``--progress-every S`` to print instead one line per S seconds (on the master or a
standalone runner, never on workers):

    progress 0:20  users 5/5  requests 123 (6.1/s)  failures 0  p95 45 ms

Off by default (0), so a user running ``locust`` directly keeps Locust's own behaviour.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import gevent
from locust import events
from locust.runners import WorkerRunner

OPTION = "--progress-every"


def add_argument(parser: Any) -> None:
    """Register ``--progress-every S`` on Locust's parser (0, the default: no progress lines)."""
    parser.add_argument(
        OPTION,
        type=float,
        default=0.0,
        include_in_web_ui=False,
        help="print one progress line every S seconds (0: off; use with --only-summary)",
    )


def progress_line(elapsed: float, users: int, wanted: int | None, total: Any) -> str:
    """The line for one moment: elapsed m:ss, users, requests (rate), failures, current p95."""
    minutes, seconds = divmod(int(elapsed), 60)
    p95 = total.get_current_response_time_percentile(0.95) if total.num_requests else None
    users_text = f"{users}/{wanted}" if wanted else str(users)
    return (
        f"progress {minutes}:{seconds:02d}  users {users_text}  requests {total.num_requests} "
        f"({total.current_rps:.1f}/s)  failures {total.num_failures}  "
        + (f"p95 {p95:.0f} ms" if p95 is not None else "p95 -")
    )


def install(every: float, out: TextIO | None = None) -> None:
    """Print a progress line every ``every`` seconds from test start to test stop (0: nothing)."""
    if every <= 0:
        return
    state: dict[str, Any] = {}

    @events.test_start.add_listener
    def _start(environment, **_kw) -> None:
        if isinstance(environment.runner, WorkerRunner) or state.get("loop"):
            return
        state["loop"] = gevent.spawn(_loop, environment, every, out, time.monotonic())

    @events.test_stop.add_listener
    def _stop(environment, **_kw) -> None:
        loop = state.pop("loop", None)
        if loop is not None:
            loop.kill(block=False)


def _loop(environment: Any, every: float, out: TextIO | None, started: float) -> None:
    while True:
        gevent.sleep(every)
        runner = environment.runner
        wanted = getattr(runner, "target_user_count", None)
        line = progress_line(
            time.monotonic() - started, runner.user_count, wanted, runner.stats.total
        )
        print(line, file=out or sys.stdout, flush=True)
