"""Small, standard-library-only helpers for run_load_tests.sh, so the bash stays simple.

    loopback URL                 exit 0 when URL's host is loopback, else 1 (sends nothing)
    free-port                    print a free TCP port on 127.0.0.1
    health URL [--timeout S]     GET URL/health once: 0 on 200, else one line and exit 2
    wait-health URL --pid P      poll /health until 200, the process dies, or --timeout
    info FILE KEY=VALUE...       merge fields into a JSON file (the run's run.json)
    run-dir LABEL                create this run's folder (results/<UTC stamp>_<LABEL>/), print it
    exec -- CMD...               exec CMD in its own process group, SIGINT at default

Runs on the system python3 too (before the virtual environment exists).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loadkit.report import run_folder  # noqa: E402 (both standard library only)
from loadkit.watch.loopback import is_loopback  # noqa: E402


def free_port() -> int:
    """A TCP port nobody listens on at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health_status(url: str, timeout: float) -> tuple[int | None, str]:
    """(HTTP status of GET url/health, reason); status None when nothing answered."""
    target = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            return response.status, "ok"
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason or ""
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)  # HTTPException: e.g. a port that is not a number
        return None, str(reason) or type(exc).__name__


def check_health(url: str, timeout: float) -> int:
    """One health check: 0 when /health answers 200, else one line on stderr and 2."""
    status, reason = health_status(url, timeout)
    if status == 200:
        return 0
    if status is None:
        print(f"pre-flight: {url} is unreachable ({reason})", file=sys.stderr)
    else:
        print(
            f"pre-flight: {url} is unhealthy: /health answered {status} {reason}".rstrip(),
            file=sys.stderr,
        )
    return 2


def process_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
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


def wait_health(url: str, pid: int, timeout: float) -> int:
    """Poll /health until 200; 2 with one line when the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    status, reason = None, "no answer yet"
    while time.monotonic() < deadline:
        if not process_alive(pid):
            print(f"pre-flight: the backend (pid {pid}) exited during start-up", file=sys.stderr)
            return 2
        status, reason = health_status(url, timeout=2.0)
        if status == 200:
            return 0
        time.sleep(0.25)
    last = f"last /health status {status}" if status else f"last error: {reason}"
    print(
        f"pre-flight: the backend did not become healthy in {timeout:g} s ({last})", file=sys.stderr
    )
    return 2


def merge_info(path: Path, pairs: Sequence[str]) -> int:
    """Merge KEY=VALUE strings (integers stay integers) into the JSON object at ``path``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        data[key] = int(value) if value.lstrip("-").isdigit() else value
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
    return 0


def make_run_dir(label: str) -> int:
    """Create this run's folder with loadkit's one run-folder maker and print its absolute path.

    A LOADTEST_RUN_DIR left in the caller's environment is ignored: a preset run is a new run."""
    os.environ.pop("LOADTEST_RUN_DIR", None)
    problem = run_folder.writable_problem()
    if problem:
        print(f"run_load_tests.sh: {problem}", file=sys.stderr)
        return 2
    try:
        print(run_folder.run_dir(label).resolve())
    except OSError as exc:
        print(f"run_load_tests.sh: cannot create the run folder: {exc}", file=sys.stderr)
        return 2
    return 0


def exec_command(command: Sequence[str]) -> int:
    """Replace this process with ``command`` in a new process group, SIGINT/SIGTERM at default.

    Bash starts background jobs with SIGINT ignored; the runner forwards Ctrl-C itself, once.
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("exec: no command", file=sys.stderr)
        return 2
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.execvp(command[0], list(command))
    except OSError as exc:
        print(f"exec: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
    return 127


def parser() -> argparse.ArgumentParser:
    """Argument parser with one sub-command per helper."""
    root = argparse.ArgumentParser(prog="runner_helper.py", description=__doc__.split("\n")[0])
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("loopback").add_argument("url")
    sub.add_parser("free-port")
    health = sub.add_parser("health")
    health.add_argument("url")
    health.add_argument("--timeout", type=float, default=5.0)
    wait = sub.add_parser("wait-health")
    wait.add_argument("url")
    wait.add_argument("--pid", type=int, required=True)
    wait.add_argument("--timeout", type=float, default=90.0)
    info = sub.add_parser("info")
    info.add_argument("file", type=Path)
    info.add_argument("pairs", nargs="*")
    sub.add_parser("run-dir").add_argument("label")
    sub.add_parser("exec").add_argument("argv", nargs=argparse.REMAINDER)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the sub-command; its return value is the exit code."""
    args = parser().parse_args(argv)
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        return 130


def dispatch(args: argparse.Namespace) -> int:
    """Run one sub-command."""
    if args.command == "loopback":
        return 0 if is_loopback(args.url) else 1
    if args.command == "free-port":
        print(free_port())
        return 0
    if args.command == "health":
        return check_health(args.url, args.timeout)
    if args.command == "wait-health":
        return wait_health(args.url, args.pid, args.timeout)
    if args.command == "info":
        return merge_info(args.file, args.pairs)
    if args.command == "run-dir":
        return make_run_dir(args.label)
    return exec_command(args.argv)


if __name__ == "__main__":
    sys.exit(main())
