"""Benchmark: the load generator's own RSS during N concurrent uploads of SIZE (issue 15, item 6).

Engine: this process sends N concurrent uploads through `loadkit.measure.http` with
`loadkit.measure.upload_body.StreamedBody` (one connection each) after a 1 MB warm-up; its RSS is
sampled every 10 ms; growth = peak - RSS just before the uploads.
Locust: `load_test.py` headless, ``-u N -r N --tags upload``, once with ``--upload-size SIZE`` and
once with ``--upload-size 64KiB`` (the control); the Locust process's RSS is sampled every 10 ms;
growth = peak (SIZE) - peak (control), so imports, logins and Locust's own stats cancel out.
Reference backend: streaming mode, SQLite, limits raised, on loopback. Goal: under 64 MB each.

    .venv/bin/python bench/generator_rss_bench.py [--uploads 10] [--size 50MB] [--seconds 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402
import upload_bench as ub  # noqa: E402

from loadkit.contract import api  # noqa: E402
from loadkit.measure.http import HttpClient, Request  # noqa: E402
from loadkit.measure.upload_body import StreamedBody, parse_size  # noqa: E402

MB = 1e6
GOAL_MB = 64.0


class ExitSafeSampler(ub.Sampler):
    """upload_bench's sampler, reading 0 once the process has exited (the peak stays)."""

    def rss(self) -> int:
        try:
            return super().rss()
        except psutil.NoSuchProcess:
            return 0


async def _upload(url: str, token: str, patient: str, size: int, seed: int) -> tuple[int, int]:
    client = HttpClient(url)
    conn = await client.connect()
    body = StreamedBody(size, seed=seed)
    headers = {**api.auth_headers(token), "Content-Type": body.content_type}
    request = Request("POST", api.upload_path(patient), headers=headers, body=body)
    await conn.exchange(request, client.host_block, ub.UPLOAD_TIMEOUT_S)
    conn.close()
    return conn.status, conn.body_sent


async def _all(url: str, token: str, patient: str, n: int, size: int) -> list[tuple[int, int]]:
    return list(await asyncio.gather(*(_upload(url, token, patient, size, i) for i in range(n))))


def engine_row(url: str, n: int, size: int) -> dict:
    """The engine's RSS growth over N concurrent uploads of ``size`` (after a warm-up)."""
    token, patient = ub._login(url)
    asyncio.run(_upload(url, token, patient, 1_000_000, 0))
    sampler = ub.Sampler(psutil.Process().pid, tree=False)
    started = time.perf_counter()
    results = asyncio.run(_all(url, token, patient, n, size))
    wall = time.perf_counter() - started
    sampler.stop()
    sent = sum(s for _, s in results)
    return {"generator": "engine", "ok": sum(st == 200 for st, _ in results), "uploads": n,
            "growth_mb": (sampler.peak - sampler.before) / MB, "peak_mb": sampler.peak / MB,
            "mb_per_s": sent / MB / wall}  # fmt: skip


def _locust_peak(url: str, n: int, size_text: str, seconds: int, run_dir: Path) -> tuple:
    """(peak RSS in bytes, upload requests, failures) of one headless Locust run."""
    run_dir.mkdir()
    accounts = run_dir / "accounts.json"  # the two accounts upload_bench's backend seeds
    rows = [{"email": f"loadtest-00{i}@example.com", "password": ub.PASSWORD} for i in (1, 2)]
    accounts.write_text(json.dumps(rows))
    cmd = [str(c.VENV_BIN / "locust"), "-f", str(c.ROOT / "load_test.py"), "--headless",
           "--host", url, "-u", str(n), "-r", str(n), "-t", f"{seconds}s", "--tags", "upload",
           "--upload-size", size_text, "--report-name", "bench", "--accounts", str(accounts),
           "--loglevel", "WARNING"]  # fmt: skip
    env = c.locust_env(run_dir, LOADTEST_NO_TOKEN_CACHE="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = ExitSafeSampler(proc.pid, tree=False)
    try:
        proc.wait(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()  # the child this function started, by its pid
        sampler.stop()
    report = json.loads((run_dir / "bench.json").read_text())
    upload = report["endpoints"].get(api.endpoint("POST", api.SESSION_UPLOAD), {})
    return sampler.peak, upload.get("requests", 0), upload.get("failures", 0)


def locust_row(url: str, n: int, size_text: str, seconds: int, tmp: Path) -> dict:
    """Locust's RSS growth attributable to the upload size: peak (SIZE) - peak (64 KiB)."""
    control, *_ = _locust_peak(url, n, "64KiB", seconds, tmp / "control")
    peak, requests, failures = _locust_peak(url, n, size_text, seconds, tmp / "large")
    return {"generator": "locust", "ok": requests - failures, "uploads": requests,
            "growth_mb": (peak - control) / MB, "peak_mb": peak / MB, "mb_per_s": None}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--size", default="50MB")
    parser.add_argument("--seconds", type=int, default=25)
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        parser.exit(2, f"generator_rss_bench: {exc}\n")
    load_before = c.load_average()
    with c.scratch("generator-rss-") as tmp:
        backend = ub._backend("stream", tmp, 0.05)
        try:
            rows = [engine_row(backend.url, args.uploads, size)]
            rows.append(locust_row(backend.url, args.uploads, args.size, args.seconds, tmp))
        finally:
            backend.stop()
    print(c.machine_line(load_before, c.load_average()))
    print(f"{args.uploads} concurrent uploads of {args.size} ({size:,} bytes)")
    table = [[r["generator"], f"{r['ok']}/{r['uploads']}", f"{r['peak_mb']:.1f}",
              f"{r['growth_mb']:.1f}", "-" if r["mb_per_s"] is None else f"{r['mb_per_s']:.0f}"]
             for r in rows]  # fmt: skip
    print(c.table(["generator", "ok/uploads", "peak RSS MB", "growth MB", "MB/s"], table))
    for r in rows:
        verdict = "PASS" if r["growth_mb"] < GOAL_MB else "FAIL"
        growth = f"{r['growth_mb']:.1f} MB (goal < {GOAL_MB:g})"
        print(f"    {r['generator']} RSS growth {growth}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
