"""Sample the server's CPU with py-spy for the steady part of a run, and write what it found.

`ServerProfiler` attaches `py-spy record --pid PID --subprocesses --native` (uvicorn workers are
children; bcrypt's hash is native code, so without `--native` the profile would stop at the Python
line calling it) and stops it with SIGINT, which makes py-spy write its recording. Each process
records in collapsed-stack form (`--format raw`) into its own part file; `stop` says how it went,
with the reason when there is no recording (switched off, remote target, no server process, no
py-spy, ptrace refused). `loadkit.report.server_profile` makes the run's one recording, flame
graph and figures from it.

Where attaching is refused, `under_profiler` gives the command that starts the backend under py-spy
instead (mode "started under").
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RATE_HZ = 10  # samples a second: --native pauses the server per sample (bench/README.md)
RAW_NAME = "server_profile.txt"  # the run's recording; each process records a part first
STOP_TIMEOUT_S = 20.0
OFF_REASON = "switched off (--no-server-profile)"
# On by default only when its cost is under 5% of the server's throughput: not shown here yet.
DEFAULT_ON = False
DEFAULT_OFF_REASON = (
    "off by default: with native frames py-spy took 0.5-28% of the server's throughput at "
    "10-20 Hz on a shared 2-core machine (bench/README.md), not reliably under the 5% goal; "
    "--server-profile turns it on"
)


def _off_reason(enabled: bool | None) -> str | None:
    """Why the switch leaves the profile off (None: it is on); None as ``enabled`` = default."""
    if enabled is None:
        return None if DEFAULT_ON else DEFAULT_OFF_REASON
    return None if enabled else OFF_REASON


def profile_reason(
    *, enabled: bool | None, remote: bool, pid: int | None, host: str = ""
) -> str | None:
    """Why this run gets no server profile, or None when it can have one."""
    if _off_reason(enabled):
        return _off_reason(enabled)
    if remote:
        return f"remote target {host}: its server process cannot be sampled from this machine"
    if pid is None:
        return "no server process found listening on the target's port on this machine"
    return None


def py_spy() -> str | None:
    """The py-spy binary: beside this Python (the virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_args(raw: Path, rate: int = RATE_HZ, *, native: bool = True) -> list[str]:
    """py-spy's options for one recording into ``raw``."""
    flags = ["--native"] if native else ["--nonblocking"]
    return ["record", "--subprocesses", *flags, "--rate", str(rate), "--format", "raw",
            "--output", str(raw)]  # fmt: skip


def under_profiler(command: Sequence[str], raw: Path, rate: int = RATE_HZ) -> list[str]:
    """``command`` started under py-spy (for where attaching to a running process is refused)."""
    binary = py_spy() or "py-spy"
    return [binary, *record_args(raw, rate), "--", *command]


class ServerProfiler:
    """One py-spy recording of a server process tree, written into ``run_dir``."""

    def __init__(
        self, run_dir: Path, pid: int | None, *, rate: int = RATE_HZ, native: bool = True
    ) -> None:
        self.run_dir, self.pid, self.rate, self.native = Path(run_dir), pid, rate, native
        self.raw = self.run_dir / f"server_profile.{os.getpid()}.part"  # merged into RAW_NAME
        self._popen: subprocess.Popen | None = None
        self._started = 0.0
        self.mode = "attached"
        self.reason: str | None = None if pid else "no server process on this machine"

    @classmethod
    def started_under(
        cls, run_dir: Path, popen: subprocess.Popen, *, rate: int = RATE_HZ
    ) -> ServerProfiler:
        """A server started with `under_profiler` (``popen`` is py-spy, leading the group).

        `stop` then ends the server too: SIGINT to the group makes py-spy write its recording.
        """
        profiler = cls(run_dir, popen.pid, rate=rate)
        profiler.raw = Path(run_dir) / RAW_NAME  # under_profiler's ``raw``
        profiler._popen, profiler._started, profiler.mode = popen, time.monotonic(), "started under"
        return profiler

    def start(self) -> bool:
        """Start py-spy on the server; False (and ``reason`` set) when it cannot even start.

        py-spy reports a refused attach by exiting within about a second; `stop` reads why.
        """
        binary = py_spy()
        if self.reason is None and binary is None:
            self.reason = "py-spy is not installed (pip install -r requirements.txt)"
        if self.reason is not None:
            return False
        command = [binary, *record_args(self.raw, self.rate, native=self.native)]
        command += ["--pid", str(self.pid)]
        self._popen = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._started = time.monotonic()
        return True

    def stop(self) -> dict:
        """Stop sampling; how it went: mode, pid, rate, seconds, errors, ``part`` (the recording
        of this process) and ``reason`` (None when there is a recording).

        `loadkit.report.server_profile.write_profile` turns it into the run's profile.
        """
        info = {"mode": self.mode, "pid": self.pid, "rate_hz": self.rate, "native": self.native}
        if self._popen is not None:
            info.update(self._finish())
            self._popen = None
        return {**info, "part": str(self.raw), "reason": self.reason}

    def _finish(self) -> dict:
        early = self._popen.poll() is not None  # py-spy gave up by itself: attach refused
        if not early:
            os.killpg(self._popen.pid, signal.SIGINT)
        try:
            output = self._popen.communicate(timeout=STOP_TIMEOUT_S)[0]
        except subprocess.TimeoutExpired:
            os.killpg(self._popen.pid, signal.SIGKILL)
            output = self._popen.communicate()[0]
        text = (output or b"").decode(errors="replace")
        if not self.raw.exists():  # an early exit with a recording: the server ended first
            self.reason = _failure(text, self.pid)
        return {"seconds": round(time.monotonic() - self._started, 1), "errors": _errors(text)}


def profiler_for(
    run_dir: Path, *, enabled: bool | None, pid: int | None, unavailable: str | None
) -> ServerProfiler:
    """The run's profiler: off, or without a pid (``unavailable`` says why), it records nothing.

    ``enabled``: --server-profile (True), --no-server-profile (False), neither (None).
    """
    profiler = ServerProfiler(run_dir, pid)
    if _off_reason(enabled):
        profiler.reason = _off_reason(enabled)
    elif pid is None:
        profiler.reason = unavailable or profiler.reason
    return profiler


def _errors(text: str) -> int | None:
    """py-spy's count of samples it could not take ("Samples: N Errors: M")."""
    _, found, rest = text.rpartition("Errors: ")
    digits = rest.split()[0] if found and rest.split() else ""
    return int(digits) if digits.isdigit() else None


def _failure(text: str, pid: int | None) -> str:
    """One line saying why py-spy did not record."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = next((line for line in lines if line.startswith("Error")), lines[0] if lines else "")
    if "ermission" in text or "ptrace" in text.lower():
        return f"ptrace to pid {pid} not permitted (needs root or CAP_SYS_PTRACE): {first}"
    return f"py-spy could not record pid {pid}: {first or 'no output'}"
