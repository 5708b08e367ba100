"""Benchmark: are the suite's percentiles right? Both paths against a ground-truth server (no test).

`bench/groundtruth.py` (pinned to core 1) serves ``GET /d`` after a seeded heavy-tailed delay and
records the time it served each request (request read -> response written). At 10 concurrent
requests, the pytest engine (``run_closed``, a child pinned to core 0) and the Locust path (10
FastHttpUsers with `loadkit.locust_plugin.hooks` imported, so our recorder writes its JSON report)
are each compared with what the server served: p50, p95, p99 and max within 1% or 2 ms. Locust's own
percentiles, from its rounded response-time buckets (``--json``), stand beside ours.

Alignment: client-side latency is server time plus the client's own overhead (loopback, parsing,
the event loop). Both are reported raw; the overhead is measured alone first, as the median
client-minus-server difference on a zero-delay ``GET /z`` at 1 request in flight.

    .venv/bin/python bench/accuracy.py [--requests 6000] [--seconds 12] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

STATS = ("p50", "p95", "p99", "max")
LOCUSTFILE = c.BENCH / "locustfile_bench.py"


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def served_stats(url: str, key: str = "d") -> dict:
    values = c.get_json(f"{url}/__served")[key]  # type: ignore[index]
    stats = {f"p{p}": nearest_rank(values, p) for p in (50, 95, 99)}
    return {**stats, "max": max(values), "count": len(values)}


def reset(url: str) -> None:
    with urllib.request.urlopen(f"{url}/__reset", timeout=10):
        pass


def engine_run(url: str, path: str, concurrency: int, requests: int) -> tuple[dict, dict]:
    """(engine's figures, server's figures) of one closed run."""
    reset(url)
    args = ("closed", url, "--path", path, "--concurrency", str(concurrency))
    client = c.engine_child(*args, "--requests", str(requests), timeout=300)
    return client, served_stats(url, path.strip("/"))


def locust_run(url: str, path: str, users: int, seconds: float, tmp: Path) -> tuple:
    """(our recorder's figures, Locust's own figures, server's figures) of one Locust run."""
    reset(url)
    run_dir = tmp / f"locust{path.strip('/')}{users}"
    env = c.locust_env(run_dir, BENCH_PATH=path, BENCH_WAIT_S="0")
    args = ("-u", str(users), "-r", str(users), "--stop-timeout", "5", "--report-name", "acc")
    stats = c.run_locust(LOCUSTFILE, url, *args, "TrivialUser", seconds=seconds, env=env)
    ours_json = json.loads((run_dir / "acc.json").read_text())
    ours = {s: ours_json[f"response_time_{s}_ms"] for s in STATS}
    ours["count"] = ours_json["total_requests"]
    entry = next(e for e in stats if e["name"] == f"GET {path}")
    n = entry["num_requests"]
    buckets = entry["response_times"]
    theirs = {f"p{p}": c.locust_percentile(buckets, n, p / 100) for p in (50, 95, 99)}
    theirs |= {"max": entry["max_response_time"], "count": n}
    return ours, theirs, served_stats(url, path.strip("/"))


def verdict(client: float, served: float) -> str:
    diff = client - served
    ok = abs(diff) <= max(0.01 * served, 2.0)
    return f"{diff:+.2f} {'ok' if ok else 'OUT'}"


def rows(name: str, client: dict, served: dict, locust_own: dict | None = None) -> list[list]:
    out = []
    for s in STATS:
        row = [f"{name} {s}", f"{served[s]:.2f}", f"{client[s]:.2f}", verdict(client[s], served[s])]
        if locust_own is not None:
            row += [f"{locust_own[s]:.0f}", verdict(locust_own[s], served[s])]
        else:
            row += ["", ""]
        out.append(row)
    return out


def overhead(client: dict, served: dict) -> float:
    return client["p50"] - served["p50"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="engine run (10 in flight)")
    parser.add_argument("--seconds", type=float, default=12, help="Locust run (10 users)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    before = c.load_average()
    with c.scratch("bench-accuracy-") as tmp, c.ground_truth("--seed", str(args.seed)) as url:
        e_zero = overhead(*engine_run(url, "/z", 1, 2000))
        engine, e_served = engine_run(url, "/d", 10, args.requests)
        ours_z, _, served_z = locust_run(url, "/z", 1, 5, tmp)
        l_zero = overhead(ours_z, served_z)
        ours, theirs, l_served = locust_run(url, "/d", 10, args.seconds, tmp)
    print(c.machine_line(before, c.load_average()))
    print(f"Ground truth: bench/groundtruth.py --mode heavy --seed {args.seed}, pinned to core 1;")
    print("clients pinned to core 0; 10 requests in flight; all figures in ms.\n")
    head = ["figure", "served (server)", "ours (client)", "ours - served", "Locust's own",
            "Locust's - served"]  # fmt: skip
    body = rows("engine", engine, e_served) + rows("Locust", ours, l_served, theirs)
    print(c.table(head, body))
    print(
        f"\nRequests: engine {engine['count']} recorded / {e_served['count']} served; "
        f"Locust {ours['count']} recorded by ours, {theirs['count']} by Locust / "
        f"{l_served['count']} served."
    )
    print(
        f"Client overhead alone (median client - server on GET /z, 1 in flight): "
        f"engine {e_zero:.3f} ms, Locust {l_zero:.3f} ms."
    )
    print("'ok': within max(1% of served, 2 ms), raw (overhead not subtracted).")


if __name__ == "__main__":
    main()
