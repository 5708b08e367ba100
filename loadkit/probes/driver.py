"""Sending the defect probes of `loadkit.probes` from the pytest scenarios (asyncio, no pytest).

Every probe request goes out on a fresh connection of the engine's own client, is recorded in the
scenario's recorder (a probe failure as kind "check" with the probe's message: never a body), and
comes back as a `Reply` with its status, body and headers for the verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from loadkit.contract import api
from loadkit.measure.http import HttpClient, Request
from loadkit.measure.send import record_answer, record_no_answer, send_once
from loadkit.probes import probe_requests, upload_probes
from loadkit.verdicts.rate_limit import LimitProbe

CHUNK = 256 * 1024
EARLY_ANSWER_S = 0.5  # a server checking Content-Length answers before any body byte


@dataclass(frozen=True)
class Reply:
    """What one probe request got: status (None: no answer), body, headers, intended start."""

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0

    def probe(self) -> LimitProbe:
        """As a rate-limit probe (status and Retry-After)."""
        retry = self.headers.get("retry-after") if self.status == 429 else None
        return LimitProbe(self.at, self.status, retry)


def _request(client: HttpClient, p: probe_requests.ProbeRequest) -> Request:
    return Request(
        p.method,
        client.prefix + p.path,
        p.endpoint,
        p.headers,
        p.body,
        probe_requests.ALL_STATUSES,
        header_check=lambda status, headers: None,
    )


async def send(
    client: HttpClient, recorder, p: probe_requests.ProbeRequest, *, timeout_s: float, judge=None
) -> Reply:
    """Send one probe request and record it; ``judge(status, body)`` names a failure."""
    at = time.time()
    answer = await send_once(client, _request(client, p), timeout_s=timeout_s)
    if answer.error is not None:
        record_no_answer(recorder, p.endpoint, answer.error, at=at, label=p.label)
        return Reply(None, at=at)
    status, body, headers = answer.status, answer.body, answer.headers
    verdict = judge(status, body) if judge else None
    if verdict:  # the probe's verdict outranks the status: a defect is a failed check
        recorder.record(p.endpoint, answer.latency_s, status=status,
                        error_kind="check", message=verdict, at=at)  # fmt: skip
    else:
        record_answer(recorder, p.endpoint, answer.latency_s, status,
                      expect=p.expect, at=at, body=body, label=p.label)  # fmt: skip
    return Reply(status, body, headers, at)


async def get_json(client: HttpClient, recorder, path: str, headers, *, timeout_s: float):
    """GET a JSON document (None unless 200), recorded under the route's template."""
    template = api.SESSIONS if path.startswith(api.SESSIONS) else path.split("?")[0]
    p = probe_requests.ProbeRequest(
        f"GET {template}",
        "GET",
        path,
        api.endpoint("GET", template),
        frozenset({200}),
        dict(headers),
    )
    reply = await send(client, recorder, p, timeout_s=timeout_s)
    try:
        return json.loads(reply.body) if reply.status == 200 else None
    except ValueError:
        return None


async def session_count(client, recorder, headers, patient_id, *, timeout_s: float) -> int | None:
    """How many sessions the patient has, as its therapist sees them (None: unreadable)."""
    path = f"{api.SESSIONS}?patient_id={patient_id}&limit=1000"
    data = await get_json(client, recorder, path, headers, timeout_s=timeout_s)
    return len(data) if isinstance(data, list) else None


async def sequence(client, recorder, requests, *, timeout_s: float, concurrency: int = 1):
    """Send ``requests`` (an iterable, consumed lazily) with ``concurrency`` in flight."""
    replies: list[Reply] = []
    source = iter(requests)

    async def worker() -> None:
        for p in source:
            replies.append(await send(client, recorder, p, timeout_s=timeout_s))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return replies


# The oversized upload: declared too long, streamed until the server answers -----------------------


async def _open(client: HttpClient):
    return await asyncio.wait_for(
        asyncio.open_connection(
            client.host,
            client.port,
            ssl=client.ssl,
            server_hostname=client.host if client.ssl else None,
        ),
        client.connect_timeout_s,
    )


async def _stream(writer, head: bytes, declared: int, status_line, time_s: float) -> int:
    """Write the head, give the server a moment to refuse on the declared length alone, then
    filler until the status line arrives, all is sent, or time is up."""
    writer.write(head)
    sent, deadline, filler = 0, time.monotonic() + time_s, bytes(CHUNK)
    try:
        await writer.drain()
        await asyncio.wait({status_line}, timeout=EARLY_ANSWER_S)
        while sent < declared and not status_line.done() and time.monotonic() < deadline:
            chunk = filler[: min(CHUNK, declared - sent)]
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # let an answer in before the next chunk
            sent += len(chunk)
    except (ConnectionError, OSError):
        pass  # the server answered and closed: read its status line
    return sent


async def oversized_upload(
    client: HttpClient,
    recorder,
    path: str,
    headers,
    *,
    declared: int,
    time_s: float,
    timeout_s: float,
) -> tuple[int | None, int, dict[str, str]]:
    """Upload declared ``declared`` bytes long: (status, body bytes sent before the answer, the
    answer's headers)."""
    preamble, _closing, ctype = upload_probes.oversize_head(path, headers, declared)
    lines = [
        f"POST {client.prefix}{path} HTTP/1.1",
        f"Host: {client.host_block[6:-4].decode()}",
        f"Content-Type: {ctype}",
        f"Content-Length: {declared}",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + preamble
    at, started = time.time(), time.perf_counter()
    endpoint = api.endpoint("POST", api.SESSION_UPLOAD)
    try:
        reader, writer = await _open(client)
    except (OSError, TimeoutError) as exc:
        record_no_answer(recorder, endpoint, exc, at=at, label="oversized upload")
        return None, 0, {}
    status_line = asyncio.ensure_future(reader.readline())
    sent, failure, answer_headers = 0, None, {}
    try:
        sent = await _stream(writer, head, declared - len(preamble), status_line, time_s)
        line = await asyncio.wait_for(status_line, timeout_s)
        answer_headers = await _headers(reader, timeout_s)
    except (OSError, TimeoutError) as exc:
        line, failure = b"", exc
    finally:
        status_line.cancel()
        writer.close()
    status = _status(line)
    if status is None:
        failure = failure or ConnectionError("closed without a status line")
        record_no_answer(recorder, endpoint, failure, at=at, label="oversized upload")
    else:
        record_answer(recorder, endpoint, time.perf_counter() - started, status, expect=413,
                      at=at, label="oversized upload")  # fmt: skip
    return status, sent, answer_headers


async def _headers(reader, timeout_s: float) -> dict[str, str]:
    """The header lines after the status line (lower-case names, bounded); what arrived when the
    connection ends or time is up."""
    headers: dict[str, str] = {}
    with contextlib.suppress(OSError, TimeoutError, ValueError):
        async with asyncio.timeout(timeout_s):
            for _ in range(100):
                raw = await reader.readline()
                if raw in (b"", b"\r\n", b"\n"):
                    break
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
    return headers


def _status(line: bytes) -> int | None:
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
