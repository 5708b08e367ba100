"""Benchmark: requests/s per core of the engine and of the Locust personas, as a ratio to wrk.

Two targets, each pinned to core 1: nginx (1 worker, a 3-byte 200; a canned token at the login path
so the personas can log in) and the reference backend's ``GET /live`` (1 uvicorn worker, SQLite,
limits raised). Each generator is pinned to core 0 and runs a closed loop with 50 in flight for
``--seconds``: wrk -t1 (the ceiling, in the same run), the engine (``run_closed``, recording every
request), Locust FastHttpUser bare, the same with `loadkit.locust_plugin.hooks` (our recorder,
monitors, report), and the personas' base class `ApiUser` (account, token, status check) with our
hooks. Locust's requests/s: its own --json (requests / (last request - start)), logins excluded.

Each row is the best of ``--repeat`` rounds: other work on this shared machine only lowers a figure.
Beside requests/s, the generator's CPU (psutil, over the middle half of the run; 100% = one core)
and requests/s per core it used (requests/s / CPU): the per-core figure holds even when other work
took part of core 0.

    .venv/bin/python bench/throughput.py [--seconds 8] [--repeat 2] [--only nginx|backend]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

IN_FLIGHT = 50
LOCUSTFILE = c.BENCH / "locustfile_bench.py"
SEED_ACCOUNTS = "10"
BACKEND_ENV = {
    "RATE_LIMIT_DEFAULT": "100000000/minute",
    "RATE_LIMIT_LOGIN": "100000/minute",
    "LOG_LEVEL": "warning",
    "SEED_ACCOUNTS": SEED_ACCOUNTS,
    "BCRYPT_ROUNDS": "4",
}
GENERATORS = (
    ("Locust FastHttpUser, bare", "TrivialUser", "0"),
    ("Locust FastHttpUser + loadkit hooks", "TrivialUser", "1"),
    ("Locust persona (ApiUser) + loadkit hooks", "PersonaUser", "1"),
)


Row = tuple[str, float, float]  # (generator, requests/s, its CPU %: 100 = one core)


def locust_row(url: str, path: str, user: str, hooks: str, seconds: float, tmp: Path) -> tuple:
    env = c.locust_env(tmp / f"{user}{hooks}", BENCH_PATH=path, BENCH_HOOKS=hooks)
    env["SEED_ACCOUNTS"] = SEED_ACCOUNTS
    cmd = [str(c.VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", url]
    cmd += ["-u", str(IN_FLIGHT), "-r", str(IN_FLIGHT), "-t", f"{int(seconds)}s", "--json"]
    cmd += ["--only-summary", "--loglevel", "WARNING", user]
    out, shares, _ = c.sampled(*cmd, seconds=seconds, env=env)
    entry = next(e for e in c.locust_stats(out) if e["name"] == f"GET {path}")
    if entry["num_failures"]:
        note = f"  note: {entry['num_failures']} failures in {user} (hooks={hooks})"
        print(note, file=sys.stderr)
    rps = entry["num_requests"] / (entry["last_request_timestamp"] - entry["start_time"])
    return rps, sum(shares)


def wrk_row(url: str, seconds: float) -> tuple[float, float]:
    cmd = ["wrk", "-t1", f"-c{IN_FLIGHT}", f"-d{int(seconds)}s", url]
    out, shares, _ = c.sampled(*cmd, seconds=seconds)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), sum(shares)  # type: ignore[union-attr]


def engine_row(url: str, path: str, seconds: float) -> tuple[float, float]:
    cmd = [sys.executable, str(c.BENCH / "engine_child.py"), "closed", url, "--path", path]
    cmd += ["--concurrency", str(IN_FLIGHT), "--seconds", str(seconds)]
    out, shares, _ = c.sampled(*cmd, seconds=seconds)
    return json.loads(out)["rps"], sum(shares)


def measure(url: str, path: str, seconds: float, tmp: Path) -> list[Row]:
    """(generator, requests/s, CPU %) rows against one target, wrk first."""
    rows = [("wrk -t1 (ceiling)", *wrk_row(url + path, seconds))]
    rows.append(("engine run_closed (uvloop, recording)", *engine_row(url, path, seconds)))
    for name, user, hooks in GENERATORS:
        rows.append((name, *locust_row(url, path, user, hooks, seconds, tmp)))
    return rows


def best_of(repeat: int, url: str, path: str, seconds: float, tmp: Path) -> list[Row]:
    """Each generator's round with the most requests/s out of ``repeat`` rounds (other work on the
    machine only ever lowers a figure)."""
    rounds = [measure(url, path, seconds, tmp) for _ in range(repeat)]
    return [max((r[i] for r in rounds), key=lambda row: row[1]) for i in range(len(rounds[0]))]


def backend_rows(seconds: float, repeat: int, tmp: Path) -> list[Row]:
    sys.path.insert(0, str(c.ROOT))
    from reference_backend.process import start_backend

    env = {**BACKEND_ENV, "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"}
    backend = start_backend(env=env, log_path=tmp / "backend.log")
    try:
        c.pin_tree(backend.pid, c.SERVER_CORE)
        return best_of(repeat, backend.url, "/live", seconds, tmp)
    finally:
        backend.stop()


def report(title: str, rows: list[Row]) -> str:
    ceiling, ceiling_core = rows[0][1], rows[0][1] / (rows[0][2] / 100)
    body = []
    for name, rps, cpu in rows:
        per_core = rps / (cpu / 100) if cpu else float("nan")
        body.append([name, f"{rps:,.0f}", f"{rps / ceiling:.2f}", f"{cpu:.0f}%",
                     f"{per_core:,.0f}", f"{per_core / ceiling_core:.2f}"])  # fmt: skip
    head = ["generator (core 0)", "requests/s", "/ wrk", "generator CPU", "req/s per core",
            "/ wrk per core"]  # fmt: skip
    return f"{title}\n\n" + c.table(head, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each row's best is kept")
    parser.add_argument("--only", choices=("nginx", "backend"), default=None)
    args = parser.parse_args()
    if args.seconds < 8:
        parser.error("--seconds below 8 leaves no steady window for the CPU sample")
    c.raise_nofile()
    before = c.load_average()
    out = []
    with c.scratch("bench-throughput-") as tmp:
        if args.only != "backend":
            with c.nginx(tmp) as url:
                rows = best_of(args.repeat, url, "/", args.seconds, tmp)
            out.append(report("nginx 1 worker on core 1, GET /:", rows))
        if args.only != "nginx":
            rows = backend_rows(args.seconds, args.repeat, tmp)
            out.append(report("reference backend, 1 worker on core 1, SQLite, GET /live:", rows))
    print(c.machine_line(before, c.load_average()))
    print(
        f"{IN_FLIGHT} in flight, closed loop, {args.seconds:g} s per row, best of "
        f"{args.repeat} rounds.\n"
    )
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
