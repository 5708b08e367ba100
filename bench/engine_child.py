"""The load engine in a process of its own for the benchmarks (pinned by the caller): one JSON line.

    engine_child.py closed URL --path /d --concurrency 10 [--requests N | --seconds S]
    engine_child.py open URL --path /d --rate 150 --seconds 10 [--drain 30]
    engine_child.py memory URL --path /d --concurrency 1000 --seconds 4

``closed`` and ``open`` answer with the run's counts, requests/s and exact percentiles (ms, from
`RunRecorder`); ``memory`` with this process's RSS before the run (after a 10-request warm-up) and
its peak while ``concurrency`` requests were in flight (sampled every 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadkit.measure.engine import RunResult, raise_open_file_limit, run, run_closed, run_open  # noqa: E402
from loadkit.measure.http import Request  # noqa: E402
from loadkit.measure.recording import RunRecorder  # noqa: E402


def summary(result: RunResult, recorder: RunRecorder) -> dict:
    """Counts, requests/s and the latency fields of a finished run."""
    hist = recorder.overall
    p50, p95, p99 = (v / 1e3 for v in hist.percentiles((50, 95, 99)))
    return {
        "completed": result.completed,
        "errors": result.errors,
        "late_starts": result.late_starts,
        "abandoned": result.abandoned,
        "duration_s": result.duration_s,
        "rps": result.requests_per_second,
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": (hist.max_us or 0) / 1e3,
        "count": hist.count,
    }


async def closed(args: argparse.Namespace) -> dict:
    req = Request("GET", args.path, f"GET {args.path}")
    rec = RunRecorder()
    result = await run_closed(
        args.url,
        lambda i: req,
        concurrency=args.concurrency,
        requests=args.requests,
        duration_s=args.seconds,
        recorder=rec,
        drain_s=args.drain,
    )
    return summary(result, rec)


async def open_model(args: argparse.Namespace) -> dict:
    req = Request("GET", args.path, f"GET {args.path}")
    rec = RunRecorder()
    result = await run_open(
        args.url,
        lambda i: req,
        rate=args.rate,
        duration_s=args.seconds,
        recorder=rec,
        drain_s=args.drain,
    )
    return summary(result, rec)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


async def memory(args: argparse.Namespace) -> dict:
    warm = argparse.Namespace(**{**vars(args), "concurrency": 10, "requests": 10, "seconds": 30})
    await closed(warm)
    before = rss_mb()
    peak = before
    task = asyncio.ensure_future(closed(args))
    for _ in range(int(args.seconds * 10) + 50):  # bounded: the run ends by its own deadline
        if task.done():
            break
        peak = max(peak, rss_mb())
        await asyncio.sleep(0.1)
    result = await task
    return {"rss_before_mb": before, "rss_peak_mb": peak, "completed": result["completed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("closed", "open", "memory"))
    parser.add_argument("url")
    parser.add_argument("--path", default="/")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--drain", type=float, default=1.0)
    args = parser.parse_args()
    raise_open_file_limit(args.concurrency + 2048)
    job = {"closed": closed, "open": open_model, "memory": memory}[args.what]
    print(json.dumps(run(job(args))))


if __name__ == "__main__":
    main()
