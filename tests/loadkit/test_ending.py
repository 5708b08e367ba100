"""loadkit.report.ending: SIGTERM and SIGHUP end a plain Python run as Ctrl-C does, once.

Each case is a fresh interpreter that installs the handlers and signals itself (real signals, no
stubs); nothing here sends traffic. About a second in all.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loadkit.report import ending

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, os, signal, sys
from loadkit.report import ending
ending.install()

async def scenario():
    try:
        os.kill(os.getpid(), signal.SIG{name})
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        print("cancelled", flush=True)  # asyncio's Ctrl-C path: the scenario is cancelled first
        raise

try:
    asyncio.run(scenario())
except KeyboardInterrupt:
    print("ended", ending.of(True), flush=True)
    os.kill(os.getpid(), signal.SIG{name})  # a second one: the default action, at once
    print("still alive", flush=True)
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("name", ["TERM", "HUP"])
def test_first_signal_is_ctrl_c_and_the_second_ends_the_process(name: str) -> None:
    """The first SIGTERM / SIGHUP cancels the running asyncio scenario and raises
    KeyboardInterrupt, noted as the ending; a second one kills the process by that signal."""
    proc = _run(CHILD.format(name=name))
    assert proc.stdout.splitlines() == ["cancelled", f"ended SIG{name}"], proc.stderr
    assert proc.returncode == -getattr(signal, f"SIG{name}")


def test_an_ignored_signal_stays_ignored() -> None:
    """Under nohup (SIGHUP ignored) install leaves SIGHUP ignored: the run goes on."""
    code = (
        "import os, signal\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "from loadkit.report import ending\nending.install()\n"
        "os.kill(os.getpid(), signal.SIGHUP)\nprint('ran on', ending.of(False))"
    )
    proc = _run(code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ran on completed", proc.stderr


def test_without_a_signal_the_ending_is_completed_or_ctrl_c() -> None:
    """No signal noted: a finished run ``completed``, an interrupted one ``SIGINT``; phrases exist
    for every ending."""
    assert ending.current() is None
    assert ending.of(False) == "completed" and ending.of(True) == "SIGINT"
    assert all(ending.describe(name) != name for name in (ending.COMPLETED, *ending.SIGNALS))
