"""Small, standard-library-only helpers for run_load_tests.sh, so the bash stays simple.

    loopback URL                 exit 0 when URL's host is loopback, else 1 (sends nothing)
    free-port                    print a free TCP port on 127.0.0.1
    health URL [--timeout S]     GET URL/health once: 0 on 200, else one line and exit 2
    wait-health URL --pid P      poll /health until 200, the process dies, or --timeout
    info FILE KEY=VALUE...       merge fields into a JSON file (the run's run.json)
    run-dir LABEL                create this run's folder (results/<UTC stamp>_<LABEL>/), print it
    exec [--same-group] -- CMD   exec CMD in its own process group (or this one), SIGINT at default
    tags                         print the Locust tags load_test.py defines (comma-separated)
    check-tags TAGS              0 when every tag exists, else one line listing the valid ones, 2
    accounts FILE                0 when FILE is a usable accounts file, else one line and 2
    scenario-done RUN NODE CODE LOG   the scenario's verdict line; not run -> run.json scenarios
    follow LOG --pid P --prefix T     print LOG's waiting lines as they are written, until P ends
    tally RUN NODE...            verdicts -> run.json, then NODEs' count by them, who failed/not run
    lock register|release ROOT TARGET RUN --pid P   other runs against TARGET -> run.json, stderr
    verdicts RUN                 every scenario's verdict (the rows report.md lists) -> run.json
    section FILE HEADING         print the "## HEADING" section of a Markdown file

Runs on the system python3 too (before the virtual environment exists); tags and check-tags need
nothing else, accounts/scenario-done/lock/verdicts import loadkit (run them with the venv's python).
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
from loadkit.report import run_folder  # noqa: E402 (all three standard library only)
from loadkit.report.run_lock import process_alive  # noqa: E402
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


def exec_command(command: Sequence[str], *, same_group: bool = False) -> int:
    """Replace this process with ``command`` in a new process group (``same_group``: this one),
    SIGINT/SIGTERM at default.

    Bash starts background jobs with SIGINT ignored; the runner forwards Ctrl-C itself, once.
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("exec: no command", file=sys.stderr)
        return 2
    if not same_group:
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.execvp(command[0], list(command))
    except OSError as exc:
        print(f"exec: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
    return 127


def check_tags(text: str) -> int:
    """0 when every tag in ``text`` is defined by load_test.py, else one line on stderr and 2."""
    from loadkit.contract import tags

    problem = tags.unknown_tags_problem(tags.split_tags(text), tags.known_tags())
    if problem:
        print(f"run_load_tests.sh: --tags: {problem}", file=sys.stderr)
        return 2
    return 0


def check_accounts(file: str) -> int:
    """0 when ``file`` is a usable accounts list, else one line (never a password) and 2."""
    from loadkit.contract import api

    try:
        api.load_accounts(file)
    except api.AccountsError as exc:
        print(f"run_load_tests.sh: --accounts: {exc}", file=sys.stderr)
        return 2
    return 0


def scenario_done(run: Path, node: str, code: int, log: Path) -> int:
    """Print the scenario's one line (verdict and reason); a scenario with no report goes into
    run.json's scenarios list as not run, with its exit line read from ``log``."""
    from loadkit.report import not_run, scenario_verdict

    path = run / f"{run_folder.safe_test_name(node)}.json"
    if not_run.has_report(run, node):
        verdict, reason = scenario_verdict.of(json.loads(path.read_text(encoding="utf-8")))
        line = verdict if verdict == scenario_verdict.PASSED else f"{verdict}: {reason}"
        if code != 0 and verdict != scenario_verdict.FAILED:  # the report's verdict counts; say it
            where = log.relative_to(run) if log.is_relative_to(run) else log
            line = f"{line} (pytest exited {code}; see {where})"
        print(line)
        return 0
    try:
        output = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        output = ""
    entry = not_run.record(run, node, code, output)
    print(f"not run: exit {code}: {entry['exit_line']}" if entry else "not run")
    return 0


def lock(action: str, root: Path, target: str, run: Path, pid: int) -> int:
    """Register or release the run against ``target``; other runs go to run.json and stderr."""
    from loadkit.report import not_run, run_lock

    act = run_lock.register if action == "register" else run_lock.release
    others = act(root, target, run, pid=pid)
    if not others:
        return 0
    info = not_run.read_info(run / "run.json")
    seen = set(info.get("concurrent_runs") or [])
    info["concurrent_runs"] = sorted(seen | {r.run_dir for r in others})
    info["concurrent_note"] = run_lock.describe(
        [run_lock.Run(0, d, 0.0) for d in info["concurrent_runs"]]
    ).replace(" (pid 0)", "")
    not_run.write_atomic(run / "run.json", info)
    print(f"warning: {run_lock.describe(others)}", file=sys.stderr)
    return 0


def record_verdicts(run: Path) -> int:
    """Write ``verdicts`` {scenario: verdict} into run.json: the rows report.md's Verdicts lists
    (the reports', then the not-run ones), so the two agree however the run ended."""
    from loadkit.report import not_run, render_verdicts

    info = not_run.read_info(run / "run.json")
    rows = render_verdicts.verdict_rows(run_folder.load_reports(run), info)
    info["verdicts"] = {row["test_name"]: row["verdict"] for row in rows}
    not_run.write_atomic(run / "run.json", info)
    return 0


def markdown_section(file: Path, heading: str) -> int:
    """Print the first section whose "## " heading starts with ``heading`` (nothing: none)."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    inside = False
    for line in lines:
        if line.startswith("## "):
            inside = line[3:].strip().startswith(heading)
        if inside:
            print(line)
    return 0


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
    run = sub.add_parser("exec")
    run.add_argument("--same-group", action="store_true")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("tags")
    sub.add_parser("check-tags").add_argument("tags")
    sub.add_parser("accounts").add_argument("file")
    done = sub.add_parser("scenario-done")
    for name, kind in (("run", Path), ("node", str), ("code", int), ("log", Path)):
        done.add_argument(name, type=kind)
    follow = sub.add_parser("follow")
    follow.add_argument("log", type=Path)
    follow.add_argument("--pid", type=int, required=True)
    follow.add_argument("--prefix", default="")
    counting = sub.add_parser("tally")
    counting.add_argument("run", type=Path)
    counting.add_argument("nodes", nargs="+")
    locking = sub.add_parser("lock")
    locking.add_argument("action", choices=("register", "release"))
    for name, kind in (("root", Path), ("target", str), ("run", Path)):
        locking.add_argument(name, type=kind)
    locking.add_argument("--pid", type=int, required=True)
    sub.add_parser("verdicts").add_argument("run", type=Path)
    section = sub.add_parser("section")
    section.add_argument("file", type=Path)
    section.add_argument("heading")
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
    return dispatch_loadkit(args)


def dispatch_loadkit(args: argparse.Namespace) -> int:
    """The sub-commands that read loadkit (tags, accounts, scenarios, the run lock), and exec."""
    if args.command == "tags":
        from loadkit.contract import tags

        print(", ".join(tags.known_tags()))
        return 0
    if args.command == "check-tags":
        return check_tags(args.tags)
    if args.command == "accounts":
        return check_accounts(args.file)
    if args.command == "scenario-done":
        return scenario_done(args.run, args.node, args.code, args.log)
    if args.command in ("follow", "tally"):
        return dispatch_all_lines(args)
    if args.command == "lock":
        return lock(args.action, args.root, args.target, args.run, args.pid)
    if args.command == "section":
        return markdown_section(args.file, args.heading)
    if args.command == "verdicts":
        return record_verdicts(args.run)
    return exec_command(args.argv, same_group=args.same_group)


def dispatch_all_lines(args: argparse.Namespace) -> int:
    """The `all` preset's waiting lines and count (scripts/scenario_lines.py, beside this file)."""
    import scenario_lines

    from loadkit.report import not_run

    if args.command == "follow":
        return scenario_lines.follow_waiting(args.log, args.pid, args.prefix)
    record_verdicts(args.run)
    return scenario_lines.tally(not_run.read_info(args.run / "run.json"), args.nodes)


if __name__ == "__main__":
    sys.exit(main())
