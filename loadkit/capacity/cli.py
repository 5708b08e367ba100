"""The capacity search's command line (run_load_tests.sh capacity calls it):

    python -m loadkit.capacity (--host URL | --bundled [--server-workers 1,2]) [--run-time 5m]
        [--max-rps N] [--mix realistic|reads] [--profile NAME] [--accounts FILE] [--yes] ...

Writes capacity.json and its charts into the run folder (LOADTEST_RUN_DIR, else a new
results/<stamp>_capacity/). Exit 0 when a step passed, 1 when none did, 2 on bad input or a failed
pre-flight (one line, before any load), 130 when interrupted (the report is still written).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence

from loadkit.capacity import bundled
from loadkit.capacity.runs import run_all
from loadkit.capacity.search import Plan
from loadkit.capacity.steps import Timing
from loadkit.capacity.target import Options
from loadkit.contract import mix
from loadkit.report import run_folder
from loadkit.verdicts import capacity as verdict
from loadkit.verdicts import slo as targets
from loadkit.watch import targeting
from loadkit.watch.loopback import is_loopback

DEFAULT_RUN_TIME_S = 300.0
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


class UsageError(ValueError):
    """Bad input: one line, exit 2."""


def seconds(text: str) -> float:
    """ "5m", "90s", "1h30m" or "120" as seconds; UsageError otherwise."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"--run-time must look like 30s, 5m, 1h30m, got {text!r}")
    h, m, s = (int(g or 0) for g in match.groups())
    return float(h * 3600 + m * 60 + s)


def worker_counts(text: str | None) -> list[int]:
    """ "1,2" as [1, 2]; UsageError for anything but positive integers."""
    if not text:
        return []
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UsageError(f"--server-workers must list positive integers like 1,2, got {text!r}")
    return counts


def parser() -> argparse.ArgumentParser:
    """The options."""
    p = argparse.ArgumentParser(prog="python -m loadkit.capacity", description="capacity search")
    p.add_argument("--host", help="target URL (else --bundled)")
    p.add_argument("--bundled", action="store_true", help="start the reference backend here")
    p.add_argument("--server-workers", help="bundled backend worker counts, e.g. 1,2")
    p.add_argument("--run-time", default="5m", help="bounds the whole search (default 5m)")
    p.add_argument("--max-rps", type=float, help="the highest rate offered")
    p.add_argument("--start-rps", type=float, default=5.0)
    p.add_argument("--growth", type=float, default=2.0)
    p.add_argument("--precision", type=float, default=0.1, help="bisection stops within this")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds per step, excluded")
    p.add_argument("--window", type=float, default=10.0, help="steady seconds per step (>= 10)")
    p.add_argument("--mix", default="realistic", choices=mix.MIXES)
    p.add_argument("--profile")
    p.add_argument("--accounts")
    p.add_argument("--tokens")
    p.add_argument("--login-rate")
    p.add_argument("--server-pid", type=int)
    p.add_argument("--request-timeout", type=float, default=30.0)
    p.add_argument("--yes", action="store_true", help="confirm load on a host outside loopback")
    return p


def options(args: argparse.Namespace, profile: targets.Profile) -> Options:
    """The search's options from the command line and the targets profile."""
    if args.window < 10:
        raise UsageError("--window must be at least 10 s (a steady window)")
    try:
        plan = Plan(args.start_rps, args.growth, args.max_rps, args.precision)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    limit = int(profile.scenarios.get("rate_limit", {}).get("limit", 100))
    return Options(
        mix=args.mix, plan=plan, slo=verdict.slo_from(profile.limits("capacity")),
        timing=Timing(args.warmup, args.window, timeout_s=args.request_timeout),
        budget_s=seconds(args.run_time), accounts=args.accounts, tokens=args.tokens,
        login_rate=args.login_rate, default_limit=limit, profile=profile,
    )  # fmt: skip


def check_target(args: argparse.Namespace) -> None:
    """Refuse, before any request, what cannot or must not run."""
    if bool(args.host) == bool(args.bundled):
        raise UsageError("give --host URL or --bundled (not both)")
    if args.server_workers and not args.bundled:
        raise UsageError("--server-workers needs the bundled backend (no --host)")
    if args.host:
        problem = targeting.host_problem(args.host)
        if problem:
            raise UsageError(problem)
        if not is_loopback(args.host) and not args.yes:
            raise UsageError(targeting.confirm_message(args.host))
    problem = bundled.redis_problem(worker_counts(args.server_workers) or [1])
    if problem:
        raise UsageError(problem.removeprefix("capacity: "))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, search, write; the exit code as the module docstring says."""
    args = parser().parse_args(argv)
    try:
        check_target(args)
        profile = targets.load_profile(args.profile)
        opts = options(args, profile)
    except (UsageError, targets.TargetsError) as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    counts = worker_counts(args.server_workers) or [1]
    return run_all(args, opts, profile, run_folder.run_dir("capacity"), time.time(), counts)


if __name__ == "__main__":
    sys.exit(main())
