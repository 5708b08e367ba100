"""capacity.loop_watch against a real server: the slow /live canary beside a search gives each
step its own p99 (it once read a list the canary no longer keeps, and every step's figure was None
behind a thread's traceback)."""

from __future__ import annotations

import threading
import time

from loadkit.capacity import loop_watch
from loadkit.verdicts.slo import load_profile


def test_each_step_window_gets_the_canarys_p99(fifo_server) -> None:
    """Against the FIFO server (25 ms a request): idle measured, marks kept with their latencies,
    a window's p99 at least the service time and none for a window with no answer."""
    failures: list[BaseException] = []
    threading.excepthook = lambda args: failures.append(args.exc_value)  # a crash in the thread
    try:
        watch = loop_watch.start(fifo_server.url, load_profile("ci"))
        assert watch is not None and watch.idle_p99_ms >= 20
        start = time.time()
        time.sleep(1.6)  # three or four answers at 2 a second
        watch.canary.stop()
    finally:
        threading.excepthook = threading.__excepthook__
    assert not failures, failures
    assert watch.canary.marks and all(ms is not None for _, ms in watch.canary.marks)
    figures = watch.figures(start, time.time())
    assert figures["canary_p99_ms"] >= 20 and figures["canary_threshold_ms"] > watch.idle_p99_ms
    assert watch.figures(start - 100, start - 50)["canary_p99_ms"] is None
