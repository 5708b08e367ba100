"""Benchmark: concurrent large uploads against the reference backend, streaming vs whole-body.

For each UPLOAD_BUFFERING mode (``stream``, ``whole-body``) a fresh reference backend (SQLite,
one worker, limits raised, PROCESSING_DELAY_SECONDS as given) takes N concurrent uploads of a
real WAV (RIFF header + 16-bit PCM) of SIZE bytes each, generated in 256 KiB pieces from one
reused piece of PCM, so the generator never holds a body. The client is a small HTTP/1.1 client on
asyncio streams (Content-Length, write + drain per piece). Figures: the server's RSS before (after a
1 MB warm-up upload), peak (sampled every 10 ms) and after (1 s after the last answer); the
generator's own RSS growth; aggregate and per-upload MB/s (decimal) to the response; time to the
response and to `processed` (polled every 50 ms; also the server's processed_at - created_at).
Loopback only; every wait is bounded. Server and generator share the 2 cores (not pinned).

    .venv/bin/python bench/upload_bench.py [--uploads 10] [--size-mb 50] [--modes stream,whole-body]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import struct
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402

from reference_backend.process import BackendProcess, start_backend  # noqa: E402

PIECE = 256 * 1024 - (256 * 1024) % 80
RATE = 16_000
POLL_S, PROCESSED_TIMEOUT_S, UPLOAD_TIMEOUT_S = 0.05, 120.0, 300.0
SAMPLE_S = 0.01
PASSWORD = "LoadTest@2026"
HIGH = "100000/minute"
GOAL_MB = 64.0  # issue 15: a generator (and a streaming server) grows under 64 MB


def _pcm_piece() -> bytes:
    """One reusable piece of 16-bit mono PCM: a 400 Hz tone at RATE Hz, whole periods."""
    period = struct.pack("<40h", *(int(8000 * math.sin(2 * math.pi * i / 40)) for i in range(40)))
    return period * (PIECE // len(period))


PCM = _pcm_piece()


def wav_pieces(size: int) -> Iterator[bytes]:
    """A WAV file of exactly ``size`` bytes: the 44-byte header, then PCM in pieces."""
    pcm = size - 44
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, RATE, RATE * 2, 2, 16)
    yield b"RIFF" + struct.pack("<I", 36 + pcm) + b"WAVE" + fmt + b"data" + struct.pack("<I", pcm)
    while pcm > 0:
        yield PCM[: min(pcm, len(PCM))]
        pcm -= min(pcm, len(PCM))


def multipart(size: int) -> tuple[bytes, bytes, str]:
    """The head and tail around a ``size``-byte WAV in a multipart body, and its Content-Type."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="session.wav"'
        "\r\nContent-Type: audio/wav\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), body


async def _get_json(port: int, path: str, token: str) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status, body = await _read_response(reader)
    finally:
        writer.close()
    return json.loads(body) if status == 200 else {"status": f"http {status}"}


@dataclass
class Upload:
    """One upload's figures (seconds from the start of its request)."""

    status: int
    to_response_s: float
    to_processed_s: float | None
    server_processed_s: float | None
    final_status: str


async def _send(port: int, token: str, patient: str, size: int) -> tuple[int, bytes]:
    head, tail, content_type = multipart(size)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST /api/sessions/upload?patient_id={patient} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n".encode()
            + head
        )
        for piece in wav_pieces(size):
            writer.write(piece)
            await writer.drain()
        writer.write(tail)
        return await _read_response(reader)
    finally:
        writer.close()


async def one_upload(port: int, token: str, patient: str, size: int) -> Upload:
    """Upload, then poll until `processed` or `failed` (bounded)."""
    started = time.perf_counter()
    status, body = await asyncio.wait_for(_send(port, token, patient, size), UPLOAD_TIMEOUT_S)
    to_response = time.perf_counter() - started
    if status != 200:
        return Upload(status, to_response, None, None, f"http {status}")
    session_id = json.loads(body)["id"]
    deadline = time.perf_counter() + PROCESSED_TIMEOUT_S
    while time.perf_counter() < deadline:
        row = await _get_json(port, f"/api/sessions/{session_id}", token)
        if row["status"] in ("processed", "failed"):
            done = time.perf_counter() - started
            return Upload(status, to_response, done, _server_seconds(row), row["status"])
        await asyncio.sleep(POLL_S)
    return Upload(status, to_response, None, None, "timed out")


def _server_seconds(row: dict) -> float | None:
    if not row.get("processed_at"):
        return None
    stamps = (datetime.fromisoformat(row[k]) for k in ("processed_at", "created_at"))
    return (next(stamps) - next(stamps)).total_seconds()


class Sampler:
    """Peak RSS of a process (with its children: ``tree``), sampled every SAMPLE_S (bounded)."""

    def __init__(self, pid: int, *, tree: bool) -> None:
        self.process = psutil.Process(pid)
        self.tree = tree
        self.before = self.rss()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        """The process's (tree's) RSS in bytes."""
        children = self.process.children(recursive=True) if self.tree else []
        tree = [self.process, *children]
        return sum(p.memory_info().rss for p in tree)

    def _run(self) -> None:
        deadline = time.monotonic() + UPLOAD_TIMEOUT_S + PROCESSED_TIMEOUT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, self.rss())
            time.sleep(SAMPLE_S)

    def stop(self) -> None:
        """Stop sampling (one last sample)."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _login(url: str) -> tuple[str, str]:
    request = urllib.request.Request(
        f"{url}/api/v1/login",
        json.dumps({"email": "loadtest-001@example.com", "password": PASSWORD}).encode(),
        {"Content-Type": "application/json"},
    )
    token = json.loads(urllib.request.urlopen(request, timeout=30).read())["access_token"]
    listing = urllib.request.Request(
        f"{url}/api/patients/", headers={"Authorization": f"Bearer {token}"}
    )
    patient = json.loads(urllib.request.urlopen(listing, timeout=30).read())[0]["id"]
    return token, patient


def _backend(mode: str, tmp: Path, delay: float) -> BackendProcess:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "UPLOAD_DIR": str(tmp / "uploads"),
        "UPLOAD_BUFFERING": mode, "BCRYPT_ROUNDS": "4", "SEED_ACCOUNTS": "2",
        "SEED_PASSWORD": PASSWORD, "PROCESSING_DELAY_SECONDS": str(delay), "LOG_LEVEL": "warning",
        **{f"RATE_LIMIT_{n}": HIGH for n in ("DEFAULT", "LOGIN", "UPLOAD")},
    }  # fmt: skip
    return start_backend(env=env, log_path=tmp / "backend.log")


async def _all(port: int, token: str, patient: str, uploads: int, size: int) -> list[Upload]:
    jobs = [one_upload(port, token, patient, size) for _ in range(uploads)]
    return list(await asyncio.gather(*jobs))


def run_mode(mode: str, uploads: int, size: int, delay: float) -> dict:
    """Start a backend in ``mode``, run the concurrent uploads; the figures."""
    with c.scratch(f"upload-bench-{mode}-") as tmp:
        backend = _backend(mode, tmp, delay)
        try:
            token, patient = _login(backend.url)
            asyncio.run(one_upload(backend.port, token, patient, 1_000_000))  # warm-up
            server = Sampler(backend.pid, tree=True)  # uvicorn workers, if any
            generator = Sampler(psutil.Process().pid, tree=False)  # not the backend child
            started = time.perf_counter()
            results = asyncio.run(_all(backend.port, token, patient, uploads, size))
            wall = time.perf_counter() - started
            server.stop()
            generator.stop()
            time.sleep(1.0)
            after = server.rss()
        finally:
            backend.stop()
    return _figures(mode, results, size, wall, server, generator, after)


def _figures(mode, results, size, wall, server, generator, after) -> dict:  # noqa: ANN001
    ok = [r for r in results if r.status == 200]
    last_response = max(r.to_response_s for r in results)
    processed = [r.to_processed_s for r in ok if r.to_processed_s is not None]
    stamped = [r.server_processed_s for r in ok if r.server_processed_s is not None]
    mb = 1e6
    return {
        "mode": mode, "ok": f"{len(ok)}/{len(results)}",
        "final": ",".join(sorted({r.final_status for r in results})),
        "rss_before": server.before / mb, "rss_peak": server.peak / mb, "rss_after": after / mb,
        "growth": (server.peak - server.before) / mb,
        "gen_growth": (generator.peak - generator.before) / mb,
        "mbps_total": len(ok) * size / mb / last_response,
        "mbps_each": statistics.median(size / mb / r.to_response_s for r in ok) if ok else 0.0,
        "resp_p50": statistics.median(r.to_response_s for r in results), "resp_max": last_response,
        "proc_p50": statistics.median(processed) if processed else math.nan,
        "proc_max": max(processed, default=math.nan),
        "server_p50": statistics.median(stamped) if stamped else math.nan, "wall": wall,
    }  # fmt: skip


def _table(rows: list[dict]) -> str:
    headers = ["mode", "ok", "status", "server RSS before / peak / after MB", "growth MB",
               "generator growth MB", "MB/s total", "MB/s per upload (median)",
               "to response p50 / max s", "to processed p50 / max s",
               "server processed_at - created_at p50 s"]  # fmt: skip
    body = [[r["mode"], r["ok"], r["final"],
             f"{r['rss_before']:.0f} / {r['rss_peak']:.0f} / {r['rss_after']:.0f}",
             f"{r['growth']:.0f}", f"{r['gen_growth']:.1f}", f"{r['mbps_total']:.0f}",
             f"{r['mbps_each']:.0f}", f"{r['resp_p50']:.2f} / {r['resp_max']:.2f}",
             f"{r['proc_p50']:.2f} / {r['proc_max']:.2f}", f"{r['server_p50']:.2f}"]
            for r in rows]  # fmt: skip
    return c.table(headers, body)


def _verdicts(rows: list[dict], in_flight: int) -> list[str]:
    """Goal lines: streaming server and generator grow under GOAL_MB; whole-body shows the body."""
    lines = []
    for r in rows:
        lines.append(_verdict(f"generator RSS growth ({r['mode']})", r["gen_growth"], "<", GOAL_MB))
        if r["mode"] == "stream":
            lines.append(_verdict("server RSS growth (stream)", r["growth"], "<", GOAL_MB))
        else:
            half = in_flight / 2e6
            lines.append(_verdict("server RSS growth (whole-body)", r["growth"], ">", half))
    return lines


def _verdict(name: str, value: float, op: str, limit: float) -> str:
    passed = value < limit if op == "<" else value > limit
    return f"    {name}: {value:.1f} MB (needs {op} {limit:.0f} MB): {'PASS' if passed else 'FAIL'}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table; 2 on bad options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--size-mb", type=float, default=50.0, help="decimal MB per upload")
    parser.add_argument("--modes", default="stream,whole-body")
    parser.add_argument("--processing-delay", type=float, default=0.2)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not 1 <= args.uploads <= 50 or not 0.01 <= args.size_mb <= 200 or not modes:
        print(
            "upload_bench: --uploads 1-50, --size-mb 0.01-200, --modes non-empty", file=sys.stderr
        )
        return 2
    if set(modes) - {"stream", "whole-body"}:
        print(f"upload_bench: unknown mode in {args.modes!r}", file=sys.stderr)
        return 2
    size = int(args.size_mb * 1e6)
    load_before = c.load_average()
    rows = [run_mode(m, args.uploads, size, args.processing_delay) for m in modes]
    print(f"{args.uploads} concurrent uploads of {size:,} bytes (WAV), "
          f"PROCESSING_DELAY_SECONDS={args.processing_delay:g}\n")  # fmt: skip
    print(_table(rows))
    print("\n" + "\n".join(_verdicts(rows, args.uploads * size)))
    print("\n" + c.machine_line(load_before, c.load_average()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
