"""The reference backend under abuse: malformed JSON, oversized headers, uploads that never finish
or are far over the size limit, and 1,000 concurrent connections at once. It refuses or times out
each, a /live probe keeps answering all along, and no committed session is lost.

Single cases in isolation are in tests/backend (test_errors: malformed JSON is 422;
test_uploads: oversize refused while streaming, a stalled body times out); this runs them together.
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.backend.helpers import (
    RawHttp,
    audio_bytes,
    bearer,
    chunk,
    login,
    multipart,
    scalar,
    seed_email,
    upload,
    upload_head,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

MAX_UPLOAD = 256 * 1024
STALL_S = 2.0
CONNECTIONS = 1000
PROBE_LIMIT_S = 5.0  # a /live answer slower than this counts as the server not serving others


class LiveProbe(threading.Thread):
    """GET /live every 0.1 s on its own client until stopped; keeps each outcome."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.results = url, threading.Event(), []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=PROBE_LIMIT_S) as client:
            for _ in range(3000):  # bounded: 5 minutes at most
                if self.stop.wait(0.1):
                    return
                started = time.monotonic()
                try:
                    status = client.get("/live").status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.results.append((status, time.monotonic() - started))


def _malformed_json(url: str, token: str) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as client:
        bodies = [b'{"email": ', b"\xff\xfe", b"[" * 5000, b'{"name": "x"' + b" " * 100_000]
        headers = {**bearer(token), "Content-Type": "application/json"}
        paths = ("/api/v1/login", "/api/patients/")
        return [
            client.post(path, content=body, headers=headers).status_code
            for body in bodies * 5
            for path in paths
        ]


def _oversized_header(port: int) -> int | str:
    conn = RawHttp(port)
    try:
        conn.send(b"GET /live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        return conn.read_response()[0]
    except OSError as exc:
        return type(exc).__name__  # refused by closing: as good as a 431
    finally:
        conn.close()


def _never_finishing_upload(port: int, token: str, patient: str) -> int:
    body, content_type = multipart(audio_bytes("mp3", 50_000))
    conn = RawHttp(port, timeout=STALL_S + 20)
    try:
        conn.send(upload_head(token, patient, content_type, length=len(body)))
        conn.send(body[:10_000])
        return conn.read_response()[0]
    finally:
        conn.close()


def _far_over_limit(port: int, token: str, patient: str) -> int | str:
    body, content_type = multipart(audio_bytes("mp3", 20 * MAX_UPLOAD))
    conn = RawHttp(port)
    try:
        conn.send(upload_head(token, patient, content_type))
        for start in range(0, len(body), 64 * 1024):
            conn.send(chunk(body[start : start + 64 * 1024]))
        return conn.read_response()[0]
    except OSError as exc:
        return type(exc).__name__
    finally:
        conn.close()


async def _one_connection(port: int) -> int | str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return type(exc).__name__
    try:
        writer.write(b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        line = await reader.readline()
        return int(line.split()[1]) if line else "closed"
    except (OSError, IndexError, ValueError) as exc:
        return type(exc).__name__
    finally:
        writer.close()


def _thousand_connections(port: int) -> list[int | str]:
    async def main() -> list[int | str]:
        tasks = [_one_connection(port) for _ in range(CONNECTIONS)]
        return await asyncio.wait_for(asyncio.gather(*tasks), 60)

    return asyncio.run(main())


def _good_uploads(url: str, token: str, patient: str, n: int) -> int:
    with httpx.Client(base_url=url, timeout=60) as client:
        return sum(upload(client, token, patient, audio_bytes("mp3", 8192)).status_code == 200
                   for _ in range(n))  # fmt: skip


@pytest.fixture
def open_files() -> None:
    """Room for 1,000 client sockets here and 1,000 in the backend (which inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * CONNECTIONS + 512))
    if wanted < 2 * CONNECTIONS + 256:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {2 * CONNECTIONS + 256}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_backend_refuses_abuse_keeps_serving_and_loses_nothing(open_files, reference) -> None:
    """All the abuse at once: each refused (4xx) or timed out, never a 5xx; /live answers every
    probe within 5 s; committed sessions before = after minus the uploads that succeeded."""
    backend = reference(
        MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        UPLOAD_BODY_TIMEOUT_SECONDS=str(STALL_S),
        RATE_LIMIT_DEFAULT="100000/minute",
        RATE_LIMIT_UPLOAD="100000/hour",
    )
    db = backend.log_path.parent / "backend.db"
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        token = login(client, seed_email(1))["access_token"]
        patient = client.get("/api/patients/", headers=bearer(token)).json()[0]["id"]
    assert _good_uploads(backend.url, token, patient, 3) == 3
    before = scalar(db, "SELECT COUNT(*) FROM sessions")
    probe = LiveProbe(backend.url)
    probe.start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        malformed = pool.submit(_malformed_json, backend.url, token)
        headers = [pool.submit(_oversized_header, backend.port) for _ in range(3)]
        stalled = [
            pool.submit(_never_finishing_upload, backend.port, token, patient) for _ in range(3)
        ]
        oversize = [pool.submit(_far_over_limit, backend.port, token, patient) for _ in range(2)]
        crowd = pool.submit(_thousand_connections, backend.port)
        good = pool.submit(_good_uploads, backend.url, token, patient, 5)
        outcomes = {
            "malformed": malformed.result(60), "crowd": crowd.result(90), "good": good.result(90),
            "headers": [f.result(60) for f in headers],
            "stalled": [f.result(60) for f in stalled],
            "oversize": [f.result(60) for f in oversize],
        }  # fmt: skip
    probe.stop.set()
    probe.join(10)
    assert time.monotonic() - started < 90  # every piece of abuse ended by itself
    assert all(400 <= s < 500 for s in outcomes["malformed"]), outcomes["malformed"]
    assert all(s == 431 or isinstance(s, str) for s in outcomes["headers"]), outcomes["headers"]
    assert outcomes["stalled"] == [408] * 3
    assert all(s == 413 or isinstance(s, str) for s in outcomes["oversize"]), outcomes["oversize"]
    crowd = outcomes["crowd"]
    assert not [s for s in crowd if isinstance(s, int) and s >= 500], "5xx under 1,000 connections"
    assert crowd.count(200) >= CONNECTIONS * 0.9, {str(s): crowd.count(s) for s in set(crowd)}
    assert len(probe.results) >= 10 and all(s == 200 for s, _ in probe.results), probe.results
    assert max(t for _, t in probe.results) < PROBE_LIMIT_S
    after = scalar(db, "SELECT COUNT(*) FROM sessions")
    assert after == before + outcomes["good"] and outcomes["good"] >= 1
    with httpx.Client(base_url=backend.url, timeout=10) as client:
        assert client.get("/health").status_code == 200
