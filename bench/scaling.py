"""Benchmark: Locust requests/s with ``--processes 1`` and ``2`` on this 2-core machine.

``TrivialUser`` (bench/locustfile_bench.py, with `loadkit.locust_plugin.hooks`: our recorder's
deltas travel from the workers to the master), 50 users, no wait, against nginx (1 worker). Nothing
is pinned: generators, master and nginx share both cores, as on a developer's machine. Rows: one
local process (no ``--processes``), then master + 1 and master + 2 worker processes (free
``--master-bind-port``). Requests/s from Locust's --json (master's aggregate) and from our report
(merged deltas), each Locust process's CPU (psutil, over 4 s mid-run; 100% = one core), requests
per second per core Locust used (Locust's req/s / its summed CPU: the figure that carries over to
another machine), and how busy the whole machine was over the same 4 s (other work included).

    .venv/bin/python bench/scaling.py [--seconds 12]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

USERS = 50
LOCUSTFILE = c.BENCH / "locustfile_bench.py"


def cpu_text(shares: list[float]) -> str:
    if len(shares) == 1:
        return f"{shares[0]:.0f}%"
    return f"master {shares[0]:.0f}%, workers " + " + ".join(f"{s:.0f}%" for s in shares[1:])


def run(url: str, processes: int, seconds: int, tmp: Path) -> list:
    """One run: [label, Locust's req/s, ours, CPU]."""
    name = f"scale{processes}"
    env = c.locust_env(tmp / name)
    cmd = [str(c.VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", url]
    cmd += ["-u", str(USERS), "-r", str(USERS), "-t", f"{seconds}s", "--json", "--only-summary"]
    cmd += ["--loglevel", "WARNING", "--report-name", name, "TrivialUser"]
    if processes:
        port = str(c.free_port())  # the forked workers dial --master-port
        cmd += ["--processes", str(processes), "--master-bind-port", port, "--master-port", port]
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=c.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(min(4, seconds / 3))
        shares, machine = c.cpu_sample(proc.pid, 4.0)
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a stray worker too (its own session)
        proc.wait(30)
    entry = next(e for e in c.locust_stats(out) if e["name"] == "GET /")
    theirs = entry["num_requests"] / (entry["last_request_timestamp"] - entry["start_time"])
    ours = json.loads((tmp / name / f"{name}.json").read_text())
    label = f"--processes {processes}" if processes else "no --processes (1 local process)"
    per_core = theirs / (sum(shares) / 100)
    return [label, f"{theirs:,.0f}", f"{ours['requests_per_second']:,.0f}",
            f"{ours['total_requests']:,} / {entry['num_requests']:,}", cpu_text(shares),
            f"{per_core:,.0f}", f"{machine:.0f}%"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args()
    if args.seconds < 10:
        parser.error("--seconds below 10 leaves no steady window for the CPU sample")
    c.raise_nofile()
    before = c.load_average()
    with c.scratch("bench-scaling-") as tmp, c.nginx(tmp, core=None) as url:
        rows = [run(url, n, args.seconds, tmp) for n in (0, 1, 2)]
    print(c.machine_line(before, c.load_average()))
    print(f"{USERS} users, no wait, GET / on nginx; nothing pinned: nginx shares the 2 cores.\n")
    head = ["Locust", "req/s (Locust)", "req/s (our report)", "requests ours / Locust's",
            "Locust CPU (100% = 1 core)", "req/s per Locust core", "machine busy"]  # fmt: skip
    print(c.table(head, rows))


if __name__ == "__main__":
    main()
