"""Benchmark: the load engine's requests/s against nginx, beside aiohttp, Locust and wrk (no test).

The generator under test is pinned to core 0 (taskset), nginx (one worker, a fixed 3-byte 200 on a
free loopback port, access log off) to core 1. Each generator runs a closed loop of GET / for
``--seconds``. Rows: the engine (run_closed on uvloop, recording every request into a RunRecorder)
at 50 and 5,000 in flight; aiohttp + uvloop at the same (the alternative it was chosen against);
Locust FastHttpUser headless, 50 users, wait_time constant(0); wrk -t1 as the ceiling. The open-file
limit is raised in-process (setrlimit, up to the hard limit) and inherited by every generator.

    .venv/bin/python bench/engine_bench.py --seconds 10

Prints a Markdown table and whether the two requirements of issue #3 hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

ROOT = c.ROOT

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
"""


def child(kind: str, url: str, concurrency: int, seconds: float) -> float:
    """Requests/s of the engine or aiohttp, from a child process pinned to the generator core."""
    cmd = [sys.executable, __file__, "--child", kind, "--url", url]
    cmd += ["--concurrency", str(concurrency), "--seconds", str(seconds)]
    return float(json.loads(c.pinned(*cmd, timeout=seconds + 120))["rps"])


def locust(tmp: Path, url: str, seconds: float) -> float:
    """Locust FastHttpUser, 50 users, no wait, headless; requests/s from its final --json stats."""
    locustfile = tmp / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    cmd = [str(c.VENV_BIN / "locust"), "-f", str(locustfile), "--headless", "-u", "50", "-r", "50"]
    cmd += ["-t", f"{int(seconds)}s", "--host", url, "--json", "--only-summary"]
    out = c.pinned(*cmd, "--loglevel", "WARNING", timeout=seconds + 120)
    stats = [s for s in json.loads(out) if s["name"] == "/"][0]
    return stats["num_requests"] / (stats["last_request_timestamp"] - stats["start_time"])


def measure(seconds: float) -> list[tuple[str, int, float]]:
    """Every row of the table: (generator, in flight, requests/s)."""
    rows = []
    with c.scratch("engine-bench-") as tmp, c.nginx(tmp) as url:
        for n in (50, 5000):
            rows.append(
                (
                    "engine (loadkit.measure.http + uvloop, recording)",
                    n,
                    child("engine", url, n, seconds),
                )
            )
        for n in (50, 5000):
            rows.append(
                ("aiohttp 3.14 ClientSession + uvloop", n, child("aiohttp", url, n, seconds))
            )
        rows.append(("Locust FastHttpUser (1 process)", 50, locust(tmp, url, seconds)))
        for n in (50, 5000):
            rows.append(("wrk -t1 (ceiling)", n, c.wrk(url, n, seconds)["rps"]))
    return rows


def table(rows: list[tuple[str, int, float]], seconds: float) -> str:
    ceiling = {n: rps for name, n, rps in rows if name.startswith("wrk")}
    lines = [
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"generator pinned to core {c.GENERATOR_CORE}, nginx 1 worker pinned to core "
        f"{c.SERVER_CORE}; "
        f"closed loop of GET / (3-byte body), {seconds:g} s per row.",
        "",
        "| generator | in flight | requests/s | / wrk same in flight | / wrk at 50 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, n, rps in rows:
        lines.append(
            f"| {name} | {n:,} | {rps:,.0f} | {rps / ceiling[n]:.2f} | {rps / ceiling[50]:.2f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[tuple[str, int, float]]) -> str:
    get = {(name.split()[0], n): rps for name, n, rps in rows}
    vs_locust = get[("engine", 50)] / get[("Locust", 50)]
    hold = get[("engine", 5000)] / get[("engine", 50)]
    return (
        f"engine at 50 / Locust FastHttpUser: {vs_locust:.1f}x (needs >= 1): "
        f"{'PASS' if vs_locust >= 1 else 'FAIL'}\n"
        f"engine at 5,000 / engine at 50: {hold:.2f} (needs >= 0.5): "
        f"{'PASS' if hold >= 0.5 else 'FAIL'}"
    )


async def engine_rps(url: str, concurrency: int, seconds: float) -> float:
    from loadkit.measure.engine import run_closed
    from loadkit.measure.http import Request
    from loadkit.measure.recording import RunRecorder

    req = Request("GET", "/", "GET /")
    rec = RunRecorder()
    result = await run_closed(
        url, lambda i: req, concurrency=concurrency, duration_s=seconds, recorder=rec
    )
    if result.errors:
        raise RuntimeError(f"{result.errors} errors: {rec.errors[:3]}")
    return result.completed / result.duration_s


async def aiohttp_rps(url: str, concurrency: int, seconds: float) -> float:
    import aiohttp

    count = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                async with session.get(url + "/") as resp:
                    await resp.read()
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def run_child(args: argparse.Namespace) -> None:
    import uvloop

    from loadkit.measure.engine import raise_open_file_limit

    raise_open_file_limit(args.concurrency + 1024)
    measure_fn = engine_rps if args.child == "engine" else aiohttp_rps
    rps = uvloop.run(measure_fn(args.url, args.concurrency, args.seconds))
    print(json.dumps({"rps": rps}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", choices=("engine", "aiohttp"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=50, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        return run_child(args)
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 cores: one for the generator, one for nginx")
    from loadkit.measure.engine import raise_open_file_limit

    raise_open_file_limit(65_536)  # inherited by wrk and the children
    before = c.load_average()
    rows = measure(args.seconds)
    print(c.machine_line(before, c.load_average()))
    print(table(rows, args.seconds))
    print()
    print(verdict(rows))


if __name__ == "__main__":
    main()
