"""Benchmark: past a server's capacity, the open model shows the queue that closed-model tools hide.

The server is the ground-truth server in ``serial:10`` mode (core 1): one ``GET /d`` at a time, each
10 ms, the rest queue; a one-worker server whose capacity is measured first (engine, closed, 10 in
flight, 5 s). Then, each for ``--seconds`` from core 0:
- the engine's open model (``run_open``) at ``--factor`` x capacity, latency timed from each
  request's intended start, requests still queued at the end allowed to finish (drain 30 s);
- the engine's closed model (``run_closed``, 10 in flight): each worker waits for its answer before
  sending again, so the arrival rate drops to whatever the server manages;
- wrk -t1 -c10 --latency, the same closed loop.
Beside each, what the server says it served (request read -> response written, queue included).

    .venv/bin/python bench/overload.py [--seconds 10] [--factor 1.5]
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
from accuracy import served_stats  # noqa: E402

IN_FLIGHT = 10
SERVICE_MS = 10


def reset(url: str) -> None:
    with urllib.request.urlopen(f"{url}/__reset", timeout=10):
        pass


def engine(url: str, *args: str, seconds: float) -> dict:
    reset(url)
    got = c.engine_child(args[0], url, "--path", "/d", *args[1:], timeout=seconds + 90)
    return {**got, "served": served_stats(url)}


def row(name: str, offered: str, got: dict) -> list:
    served = got["served"]
    return [
        name,
        offered,
        f"{got['rps']:,.0f}",
        f"{got['p50']:,.0f}",
        f"{got['p99']:,.0f}",
        f"{got['max']:,.0f}",
        str(got.get("late_starts", "")),
        f"{served['p50']:,.0f} / {served['p99']:,.0f}",
    ]


def measure(url: str, seconds: float, factor: float) -> tuple[float, list[list]]:
    closed = ("closed", "--concurrency", str(IN_FLIGHT))
    capacity = engine(url, *closed, "--seconds", "5", seconds=5)["rps"]
    rate = factor * capacity
    opened = engine(url, "open", "--rate", f"{rate:.1f}", "--seconds", str(seconds),
                    "--drain", "30", seconds=seconds + 30)  # fmt: skip
    shut = engine(url, *closed, "--seconds", str(seconds), seconds=seconds)
    reset(url)
    w = c.wrk(url + "/d", IN_FLIGHT, seconds)
    w["served"] = served_stats(url)
    rows = [
        row("engine run_open (from intended start)", f"{rate:,.0f}", opened),
        row(f"engine run_closed, {IN_FLIGHT} in flight", "(closed)", shut),
        row(f"wrk -t1 -c{IN_FLIGHT}", "(closed)", w),
    ]
    return capacity, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--factor", type=float, default=1.5)
    args = parser.parse_args()
    c.raise_nofile()
    before = c.load_average()
    with c.ground_truth("--mode", f"serial:{SERVICE_MS}") as url:
        capacity, rows = measure(url, args.seconds, args.factor)
    print(c.machine_line(before, c.load_average()))
    print(
        f"Server: bench/groundtruth.py --mode serial:{SERVICE_MS} (one request at a time, "
        f"{SERVICE_MS} ms each) on core 1; measured capacity {capacity:,.1f} requests/s. "
        f"Generators on core 0, {args.seconds:g} s each; latency in ms.\n"
    )
    head = ["tool", "offered req/s", "achieved req/s", "p50", "p99", "max", "late starts",
            "served p50 / p99"]  # fmt: skip
    print(c.table(head, rows))


if __name__ == "__main__":
    main()
