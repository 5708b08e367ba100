"""Benchmark of the reference backend itself (not a test).

For `/live`, `/health` and `GET /api/sessions/` (50 rows), one worker, SQLite and (when
TEST_POSTGRES_URL is set) PostgreSQL, with limits raised for the run:
- throughput: requests/s at 100 concurrent connections, measured by wrk;
- latency: exact p50/p95/p99 at 20 concurrent clients (aiohttp, every latency recorded).
Server and load generator share this machine's cores, so the figures are a floor.

    .venv/bin/python bench/backend_bench.py [--seconds 10] [--latency-seconds 10]
"""

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_backend.process import BackendProcess, start_backend  # noqa: E402

ENDPOINTS = ("/live", "/health", "/api/sessions/")
BENCH_ENV = {
    "RATE_LIMIT_DEFAULT": "1000000/minute",
    "LOG_LEVEL": "warning",
    "SEED_ACCOUNTS": "100",
    "PROCESSING_DELAY_SECONDS": "0.2",
}
WARMUP_SECONDS = 1.0


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per endpoint")
    parser.add_argument("--latency-seconds", type=float, default=10, help="p95 run per endpoint")
    parser.add_argument("--throughput-clients", type=int, default=100)
    parser.add_argument("--latency-clients", type=int, default=20)
    return parser.parse_args()


def login(url: str) -> str:
    """An access token for the first seed therapist."""
    body = json.dumps({"email": "loadtest-001@example.com", "password": "LoadTest@2026"}).encode()
    request = urllib.request.Request(
        f"{url}/api/v1/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def wrk_throughput(url: str, token: str, clients: int, seconds: int) -> tuple[float, int]:
    """Requests/s and non-2xx responses from wrk with ``clients`` connections."""
    command = [
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{seconds}s",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    if errors:
        print(f"  wrk {url}: {errors.group(0)}", file=sys.stderr)
    return (float(rate.group(1)) if rate else 0.0), (int(bad.group(1)) if bad else 0)


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict,
    window: tuple[float, float],
    latencies: list[float],
    failures: list[int],
) -> None:
    record_from, until = window
    while (start := time.perf_counter()) < until:
        try:
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures.append(response.status)
        except (aiohttp.ClientError, TimeoutError):
            failures.append(0)  # a failed request is data, not latency
            continue
        if start >= record_from:
            latencies.append(time.perf_counter() - start)


async def measure_latency(url: str, token: str, clients: int, seconds: float) -> dict:
    """Every latency from ``clients`` closed-loop clients after a warm-up; exact percentiles."""
    latencies: list[float] = []
    failures: list[int] = []
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        record_from, until = start + WARMUP_SECONDS, start + WARMUP_SECONDS + seconds
        window = (record_from, until)
        tasks = [
            _client(session, url, headers, window, latencies, failures) for _ in range(clients)
        ]
        await asyncio.gather(*tasks)
    return {"n": len(latencies), "failures": len(failures), **percentiles(latencies)}


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank p50, p95, p99 and max, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))
        return ordered[int(index)] * 1000

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1] * 1000}


def bench_database(label: str, env: dict[str, str], args: argparse.Namespace) -> list[dict]:
    """All endpoints against one backend."""
    tmp = Path(tempfile.mkdtemp(prefix="backend_bench_"))
    env = {"UPLOAD_DIR": str(tmp / "uploads"), **BENCH_ENV, **env}
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.db'}")
    backend: BackendProcess = start_backend(env=env, log_path=tmp / "backend.log")
    rows = []
    try:
        token = login(backend.url)
        for path in ENDPOINTS:
            url = backend.url + path
            rate, bad = wrk_throughput(url, token, args.throughput_clients, args.seconds)
            latency = asyncio.run(
                measure_latency(url, token, args.latency_clients, args.latency_seconds)
            )
            rows.append({"db": label, "endpoint": path, "rps": rate, "wrk_non2xx": bad, **latency})
            print(
                f"  {label} {path}: {rate:.0f} req/s, p95 {latency['p95']:.1f} ms", file=sys.stderr
            )
    finally:
        backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def postgres_env() -> tuple[dict[str, str], str, str] | None:
    """A fresh database on TEST_POSTGRES_URL: env, server URL, database name."""
    server = os.environ.get("TEST_POSTGRES_URL", "").strip()
    if not server:
        return None
    server = "postgresql://" + server.partition("://")[2]
    name = f"tb_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(server, f'CREATE DATABASE "{name}"'))
    return {"DATABASE_URL": f"{server.rpartition('/')[0]}/{name}"}, server, name


async def _pg_admin(server: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(server)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def machine() -> str:
    """CPU, cores, OS, Python and commit of this run."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    return (f"{model}, {os.cpu_count()} cores shared by server and load generator; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
            f"commit {commit or 'unknown'}")  # fmt: skip


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    """The results as a Markdown table."""
    lines = [
        f"| database | endpoint | req/s at {args.throughput_clients} conns (wrk) | "
        f"p50 / p95 / p99 ms at {args.latency_clients} clients | requests | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['db']} | `GET {r['endpoint']}` | {r['rps']:,.0f} | "
            f"{r['p50']:.1f} / {r['p95']:.1f} / {r['p99']:.1f} | {r['n']:,} | "
            f"{r['failures'] + r['wrk_non2xx']} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run every database and print the table."""
    args = parse_args()
    if not shutil.which("wrk"):
        print("backend_bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    rows = bench_database("SQLite", {}, args)
    postgres = postgres_env()
    if postgres is None:
        print("  PostgreSQL skipped: TEST_POSTGRES_URL is not set", file=sys.stderr)
    else:
        env, server, name = postgres
        try:
            rows += bench_database("PostgreSQL", env, args)
        finally:
            asyncio.run(_pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(markdown(rows, args))
    limit = BENCH_ENV["RATE_LIMIT_DEFAULT"]
    print(f"\nMachine: {machine()}. `GET /api/sessions/` returns 50 sessions with transcripts "
          f"and notes. Limits raised (RATE_LIMIT_DEFAULT={limit}).")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
