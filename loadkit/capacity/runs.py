"""The searches of one run: against --host, or against the bundled backend at each worker
count; then one capacity.json. Setup failures are one line (exit 2), never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadkit.capacity import bundled
from loadkit.capacity import search as plan_search
from loadkit.capacity.report import build, write
from loadkit.capacity.target import Options, Searched, search_target
from loadkit.contract import api
from loadkit.contract.accounts import SeedEnd
from loadkit.suite.session import AccountsUnusable, SetupError
from loadkit.verdicts import slo as targets
from loadkit.watch import targeting

SETUP_ERRORS = (AccountsUnusable, SetupError, SeedEnd, api.LoginError, api.AccountsError)
REMOTE_LIMITS = (
    "the target's rate limits were left as they are: where they refused requests, "
    "limiting_factor is rate_limit"
)


def _say(line: str) -> None:
    print(line, flush=True)


def _host_runs(args: argparse.Namespace, opts: Options) -> list[tuple[int | None, Searched]]:
    options = targeting.Options(args.host.rstrip("/"), args.server_pid, args.request_timeout, True)
    target = targeting.remote_or_local(options)
    problem = targeting.preflight(target)
    if problem:
        raise SetupError(f"pre-flight: {problem}")
    _say(f"capacity: searching {target.url} ({opts.mix} mix, at most {opts.budget_s:g} s)")
    return [(None, search_target(target, opts, bundled=False, workers=None, say=_say))]


def _bundled_runs(args: argparse.Namespace, opts: Options, run_dir: Path, counts: list[int]):
    share = Options(**{**opts.__dict__, "budget_s": opts.budget_s / len(counts)})
    runs = []
    for workers in counts:
        with bundled.bundled_backend(run_dir, workers) as backend:
            target = targeting.Target(backend.url, backend.pid, None, args.request_timeout)
            _say(f"capacity: bundled backend, {workers} worker(s), on {backend.url} "
                 f"({opts.mix} mix, at most {share.budget_s:g} s)")  # fmt: skip
            searched = search_target(target, share, bundled=True, workers=workers, say=_say)
        runs.append((workers if args.server_workers else None, searched))
        if searched.found.ended == plan_search.ENDED_INTERRUPTED:
            break
    return runs


def run_all(args: argparse.Namespace, opts: Options, profile: targets.Profile, run_dir: Path,
            started_at: float, counts: list[int]) -> int:  # fmt: skip
    """Run the searches (``counts``: the bundled backend's worker counts), write capacity.json;
    the exit code."""
    try:
        if args.bundled:
            runs = _bundled_runs(args, opts, run_dir, counts)
        else:
            runs = _host_runs(args, opts)
    except SETUP_ERRORS as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the bundled backend or Redis did not start
        print(f"capacity: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("capacity: interrupted before the first step; nothing measured", file=sys.stderr)
        return 130
    note = bundled.LIMITS_NOTE if args.bundled else REMOTE_LIMITS
    target = args.host or "the bundled reference backend"
    report = build(runs, opts, target=str(target), profile=profile, started_at=started_at,
                   limits_note=note, shared=bool(args.bundled) or _loopback(args.host))  # fmt: skip
    path = write(report, run_dir)
    factor = report["limiting_factor"]
    _say(f"capacity: max sustainable {report['max_sustainable_rps']} rps "
         f"({report['search_ended']}); "
         f"limiting factor {factor['name']}: {factor['summary']}")  # fmt: skip
    _say(f"capacity: report {path}")
    if report["search_ended"] == plan_search.ENDED_INTERRUPTED:
        return 130
    return 0 if report["passed"] else 1


def _loopback(host: str | None) -> bool:
    from loadkit.watch.loopback import is_loopback

    return bool(host) and is_loopback(host)
