"""Benchmark: the reference backend's throughput with the py-spy server profile on and off.

One backend (SQLite, one worker, pinned to core 1), wrk on core 0 against `GET /api/sessions/`
(authenticated, 50 rows: the CPU-bound read the suite runs most). Rounds alternate off / on at
each variant so that drift on this shared machine falls on both; py-spy runs unpinned, as it does
in a real run, with the suite's options (`--subprocesses`, raw output) and `--native` (blocking:
py-spy pauses the server to unwind) or `--nonblocking` (Python frames only, no pause). The table
gives the requests/s per round and their median per condition; the overhead is the median, over
rounds, of 1 - on/off within the same round (drift between rounds cancels).

    .venv/bin/python bench/profile_overhead.py [--seconds 8] [--rounds 3]
        [--variants native:10,native:20,plain:100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import load_average, machine_line, pin_tree, pinned, table  # noqa: E402
from loadkit.watch.server_profile import ServerProfiler  # noqa: E402
from reference_backend.process import start_backend  # noqa: E402

ENV = {
    "RATE_LIMIT_DEFAULT": "1000000/minute",
    "RATE_LIMIT_LOGIN": "1000/minute",
    "LOG_LEVEL": "warning",
    "SEED_ACCOUNTS": "2",
    "BCRYPT_ROUNDS": "4",
}
CONNECTIONS = 20


def _token(url: str) -> str:
    body = json.dumps({"email": "loadtest-001@example.com", "password": "LoadTest@2026"})
    request = urllib.request.Request(
        f"{url}/api/v1/login", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def _rps(url: str, token: str, seconds: int) -> float:
    out = pinned(
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}",
        f"{url}/api/sessions/", timeout=seconds + 60,
    )  # fmt: skip
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
    return float(line.split()[1])


def _round(url: str, token: str, pid: int, variant: str, seconds: int, tmp: Path) -> float:
    if variant == "off":
        return _rps(url, token, seconds)
    kind, rate = variant.split(":")
    folder = Path(tempfile.mkdtemp(dir=tmp))
    profiler = ServerProfiler(folder, pid, rate=int(rate), native=kind == "native")
    profiler.start()
    try:
        return _rps(url, token, seconds)
    finally:
        data = profiler.stop()
        if not data["recorded"]:
            raise SystemExit(f"profile_overhead: no profile: {data['reason']}")


def measure(seconds: int, rounds: int, variants: list[str]) -> dict[str, list[float]]:
    """Requests/s per condition ("off", "native:20", ...), one figure per round."""
    results: dict[str, list[float]] = {"off": [], **{v: [] for v in variants}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**ENV, "DATABASE_URL": f"sqlite:///{tmp}/bench.db", "UPLOAD_DIR": str(tmp / "up")}
        backend = start_backend(env=env, log_path=tmp / "backend.log")
        try:
            pin_tree(backend.pid, "1")
            token = _token(backend.url)
            _rps(backend.url, token, 2)  # warm-up
            for _ in range(rounds):
                for variant in results:
                    rps = _round(backend.url, token, backend.pid, variant, seconds, tmp)
                    results[variant].append(rps)
        finally:
            backend.stop()
    return results


def main() -> int:
    """Run the rounds and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--variants",
        default="native:10,native:20,plain:100",
        help="KIND:HZ list; native = --native (blocking), plain = --nonblocking, no native frames",
    )
    args = parser.parse_args()
    before = load_average()
    results = measure(args.seconds, args.rounds, args.variants.split(","))
    rows = []
    for key, values in results.items():
        ratios = [v / off for v, off in zip(values, results["off"], strict=True)]
        overhead = "" if key == "off" else f"{100 * (1 - statistics.median(ratios)):.1f}%"
        per_round = " / ".join(f"{v:.0f}" for v in values)
        rows.append((key, per_round, f"{statistics.median(values):.0f}", overhead))
    print(machine_line(before, load_average()))
    headers = ("profiler", "req/s per round", "median req/s", "overhead (median of per-round)")
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
