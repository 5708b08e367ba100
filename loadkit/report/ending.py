"""How a run ended: it ran to its end, or a signal stopped it (Ctrl-C, SIGTERM, SIGHUP).

One note per process, the first ending wins; every report of the process carries it as
``ended`` ("completed", "SIGINT", "SIGTERM", "SIGHUP"). `install` (plain Python processes: pytest
and its xdist workers) makes SIGTERM and SIGHUP end a run the way Ctrl-C does: the handler calls
whatever handles SIGINT at that moment (Python's own, which raises KeyboardInterrupt, or asyncio's,
which cancels the running scenario first), so each scenario's report is written, marked
interrupted. A second SIGTERM or SIGHUP while the first is being handled ends the process at once
(the signal's default action), as a second ``kill`` expects. Locust (gevent) notes its endings from
its own handlers (``locust_plugin/hooks.py``); the runner writes its own into run.json.
"""

from __future__ import annotations

import os
import signal
import threading

COMPLETED = "completed"
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
DESCRIPTIONS = {
    COMPLETED: "ran to its end",
    "SIGINT": "interrupted (SIGINT, Ctrl-C)",
    "SIGTERM": "terminated (SIGTERM)",
    "SIGHUP": "hung up (SIGHUP: its terminal closed)",
}

_ended: str | None = None


def note(name: str) -> bool:
    """Note that the run is ending by ``name``; True when this is the process's first ending."""
    global _ended
    if _ended is not None:
        return False
    _ended = name
    return True


def current() -> str | None:
    """The ending noted in this process (None: none yet)."""
    return _ended


def of(interrupted: bool) -> str:
    """The ``ended`` of a report: the noted signal, else SIGINT when interrupted, else completed.

    An interrupt with no noted signal came through KeyboardInterrupt: Ctrl-C."""
    return _ended or ("SIGINT" if interrupted else COMPLETED)


def describe(ended: str | None) -> str:
    """A reader's phrase for an ``ended`` value ("terminated (SIGTERM)")."""
    return DESCRIPTIONS.get(str(ended), str(ended))


def _as_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM / SIGHUP: the first one does what Ctrl-C does now; a later one ends the process."""
    if not note(signal.Signals(signum).name):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def install() -> bool:
    """Make SIGTERM and SIGHUP end this process's run like Ctrl-C (main thread only; else False)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _as_ctrl_c)
    return True
