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
import contextlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
GENERATOR_CORE, SERVER_CORE = "0", "1"

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
events {{ worker_connections 10000; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def nginx(tmp: Path) -> Iterator[str]:
    """Run nginx pinned to the server core for the duration of the block; yields its URL."""
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
    cmd = ["taskset", "-c", SERVER_CORE, "nginx", "-c", str(conf), "-p", str(tmp)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


def pinned(*cmd: str, timeout: float) -> str:
    """Run a generator command pinned to the generator core; returns its stdout."""
    full = ["taskset", "-c", GENERATOR_CORE, *cmd]
    done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {done.stderr[-500:]}")
    return done.stdout


def child(kind: str, url: str, concurrency: int, seconds: float) -> float:
    """Requests/s of the engine or aiohttp, from a child process pinned to the generator core."""
    cmd = [sys.executable, __file__, "--child", kind, "--url", url]
    cmd += ["--concurrency", str(concurrency), "--seconds", str(seconds)]
    return float(json.loads(pinned(*cmd, timeout=seconds + 120))["rps"])


def locust(tmp: Path, url: str, seconds: float) -> float:
    """Locust FastHttpUser, 50 users, no wait, headless; requests/s from its final --json stats."""
    locustfile = tmp / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    cmd = [str(VENV_BIN / "locust"), "-f", str(locustfile), "--headless", "-u", "50", "-r", "50"]
    cmd += ["-t", f"{int(seconds)}s", "--host", url, "--json", "--only-summary"]
    out = pinned(*cmd, "--loglevel", "WARNING", timeout=seconds + 120)
    stats = [s for s in json.loads(out) if s["name"] == "/"][0]
    return stats["num_requests"] / (stats["last_request_timestamp"] - stats["start_time"])


def wrk(url: str, connections: int, seconds: float) -> float:
    out = pinned("wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", url, timeout=seconds + 60)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def measure(seconds: float) -> list[tuple[str, int, float]]:
    """Every row of the table: (generator, in flight, requests/s)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as d, nginx(Path(d)) as url:
        for n in (50, 5000):
            rows.append(
                ("engine (loadkit.http + uvloop, recording)", n, child("engine", url, n, seconds))
            )
        for n in (50, 5000):
            rows.append(
                ("aiohttp 3.14 ClientSession + uvloop", n, child("aiohttp", url, n, seconds))
            )
        rows.append(("Locust FastHttpUser (1 process)", 50, locust(Path(d), url, seconds)))
        for n in (50, 5000):
            rows.append(("wrk -t1 (ceiling)", n, wrk(url, n, seconds)))
    return rows


def table(rows: list[tuple[str, int, float]], seconds: float) -> str:
    ceiling = {n: rps for name, n, rps in rows if name.startswith("wrk")}
    lines = [
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"generator pinned to core {GENERATOR_CORE}, nginx 1 worker pinned to core {SERVER_CORE}; "
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
    from loadkit.engine import run_closed
    from loadkit.http import Request
    from loadkit.metrics import RunRecorder

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

    from loadkit.engine import raise_open_file_limit

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
    from loadkit.engine import raise_open_file_limit

    raise_open_file_limit(65_536)  # inherited by wrk and the children
    rows = measure(args.seconds)
    print(table(rows, args.seconds))
    print()
    print(verdict(rows))


if __name__ == "__main__":
    main()
