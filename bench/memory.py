"""Benchmark: memory per simulated Locust user, and of the engine per 1,000 requests in flight.

Locust: ``TrivialUser`` (bench/locustfile_bench.py, `loadkit.locust_plugin.hooks` imported, as in
load_test.py) against nginx (1 worker, worker_connections 12,000, core 1), one ``GET /`` per user
and then ``wait_time = constant(600)``: the run is about holding users, not sending requests. The
Locust process (core 0) is sampled every 250 ms; its peak RSS at N users, minus the peak at 1 user,
divided by N - 1, is the RSS per user.

Engine: a child process (core 0) runs ``run_closed`` against the ground-truth server in
``fixed:1000`` mode (every request held 1 s, core 1) with 1,000 and 5,000 in flight for 4 s; its
peak RSS minus its RSS before the run (after a 10-request warm-up), per 1,000 in flight.
The open-file limit is raised to the hard limit (20,000 here) and inherited.

    .venv/bin/python bench/memory.py [--users 1,100,1000,5000] [--in-flight 1000,5000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

SPAWN_RATE = 1000
HOLD_S = 6
LOCUSTFILE = c.BENCH / "locustfile_bench.py"


def locust_peak_rss(url: str, users: int, tmp: Path) -> float:
    """Peak RSS (MiB) of a Locust process holding ``users`` users."""
    seconds = int(users / SPAWN_RATE) + HOLD_S
    env = c.locust_env(tmp / f"mem{users}", BENCH_WAIT_S="600")
    cmd = ["taskset", "-c", c.GENERATOR_CORE, str(c.VENV_BIN / "locust"), "-f", str(LOCUSTFILE)]
    cmd += ["--headless", "--host", url, "-u", str(users), "-r", str(SPAWN_RATE)]
    cmd += ["-t", f"{seconds}s", "--stop-timeout", "0", "--loglevel", "ERROR", "TrivialUser"]
    proc = subprocess.Popen(
        cmd, env=env, cwd=c.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peak = 0.0
    try:
        watched = psutil.Process(proc.pid)
        deadline = time.monotonic() + seconds + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, watched.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.25)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    return peak


def locust_rows(users: list[int], tmp: Path) -> list[list]:
    with c.nginx(tmp) as url:
        peaks = {n: locust_peak_rss(url, n, tmp) for n in sorted({1, *users})}
    base = peaks[1]
    rows = [["Locust, 1 user (baseline)", f"{base:.1f}", ""]]
    for n in users:
        if n > 1:
            per_user_kb = (peaks[n] - base) * 1024 / (n - 1)
            rows.append([f"Locust, {n:,} users", f"{peaks[n]:.1f}", f"{per_user_kb:.1f} KiB/user"])
    return rows


def engine_rows(in_flight: list[int]) -> list[list]:
    rows = []
    with c.ground_truth("--mode", "fixed:1000") as url:
        for n in in_flight:
            args = ("memory", url, "--path", "/d", "--concurrency", str(n), "--seconds", "4")
            got = c.engine_child(*args, timeout=120)
            per_k = (got["rss_peak_mb"] - got["rss_before_mb"]) * 1000 / n
            label = f"engine, {n:,} in flight (before: {got['rss_before_mb']:.1f} MiB)"
            rows.append([label, f"{got['rss_peak_mb']:.1f}", f"{per_k:.1f} MiB/1,000 in flight"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="1,100,1000,5000")
    parser.add_argument("--in-flight", default="1000,5000")
    args = parser.parse_args()
    limit = c.raise_nofile()
    before = c.load_average()
    with c.scratch("bench-memory-") as tmp:
        rows = locust_rows([int(n) for n in args.users.split(",")], tmp)
    rows += engine_rows([int(n) for n in args.in_flight.split(",")])
    print(c.machine_line(before, c.load_average()))
    print(f"Open-file limit {limit:,}; generators on core 0, servers on core 1.\n")
    print(c.table(["process", "peak RSS (MiB)", "per unit"], rows))


if __name__ == "__main__":
    main()
