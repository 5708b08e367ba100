"""A small HTTP/1.1 server that breaks on schedule: 500s, closed connections, stalls.

Run as ``python tests/faults/chaos_server.py --log FILE [--faults 500,close,stall] [--every N]
[--stall-s S]``; it binds 127.0.0.1 on a free port and prints ``PORT <n>`` first. It answers just
enough of the contract for the load suites to run against it (the probes, login, refresh, patient
and session lists; any password but ``Wrong@Password1`` logs in).

Faults hit GET requests of ``--paths`` only (default ``/``, ``/health``, ``/ready``; never the
suite's ``/live`` canary):
every ``N``-th such request gets the next fault of ``--faults`` in turn (``500``: an error
envelope with status 500; ``close``: the connection is dropped without a response; ``cut``: the
connection is dropped part-way through a response body; ``stall``: no answer for ``--stall-s``
seconds, then the connection is dropped). Requests from urllib (the
suite's pre-flight and its monitors) are never faulted, so the schedule counts load requests only.

Every accepted connection and every request is written to the log as a JSON line (``conn``: peer
and local address; ``req``: number, path, fault or null), so a test can compare what the server
did with what a report says, and see where every connection came from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path

PROBES = ("/", "/health", "/ready", "/live")
FAULTED = ("/", "/health", "/ready")  # not /live: the suite's canary watches it beside the load
REJECTED_PASSWORD = "Wrong@Password1"
MAX_HEAD = 64 * 1024


class Chaos:
    """The fault schedule and the log."""

    def __init__(self, log: Path, faults: list[str], every: int, stall_s: float) -> None:
        self.paths = FAULTED
        self.log = log.open("a", buffering=1, encoding="utf-8")
        self.faults, self.every, self.stall_s = faults, every, stall_s
        self.eligible = 0
        self.requests = 0

    def write(self, **entry: object) -> None:
        self.log.write(json.dumps(entry) + "\n")

    def fault_for(self, method: str, path: str, agent: str) -> str | None:
        """The fault this request gets (None: a normal answer)."""
        if method != "GET" or path not in self.paths or agent.startswith("Python-urllib"):
            return None
        self.eligible += 1
        if not self.faults or self.eligible % self.every:
            return None
        return self.faults[(self.eligible // self.every - 1) % len(self.faults)]


def _tokens() -> dict:
    return {
        "access_token": f"fake.{uuid.uuid4().hex}.token",
        "refresh_token": uuid.uuid4().hex,
        "token_type": "bearer",
        "expires_in": 1800,
    }


def route(method: str, path: str, body: bytes) -> tuple[int, object]:
    """(status, JSON body) of a normal answer."""
    if path == "/health":
        pool = {"size": 5, "checked_in": 1, "checked_out": 0, "overflow": -4}
        return 200, {
            "status": "healthy",
            "checks": {"database": {"status": "healthy", "pool": pool}},
        }
    if path in PROBES:
        return 200, {"status": "alive", "service": "chaos"}
    if method == "POST" and path in ("/api/v1/login", "/api/v1/refresh"):
        try:
            password = json.loads(body or b"{}").get("password")
        except ValueError:
            password = None
        if password == REJECTED_PASSWORD:
            return 401, {"error": {"code": "invalid_credentials", "message": "refused",
                                   "retriable": False, "request_id": "x"}}  # fmt: skip
        return 200, _tokens()
    if path.startswith("/api/patients"):
        return 200, [{"id": "00000000-0000-0000-0000-000000000001", "name": "Pat"}]
    return 200, []


def response(status: int, payload: object) -> bytes:
    """A keep-alive HTTP/1.1 response with a JSON body."""
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {uuid.uuid4()}\r\n\r\n"
    )
    return head.encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict, bytes] | None:
    """(method, path, headers, body) of the next request; None when the client is gone."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length") or 0)
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return method, target.split("?", 1)[0], headers, body


async def serve_connection(chaos: Chaos, reader, writer) -> None:
    """Answer requests on one connection until the client leaves or a fault drops it."""
    peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
    chaos.write(conn=True, peer=list(peer[:2]), local=list(local[:2]))
    try:
        for _ in range(100_000):  # bounded: a connection serves at most this many requests
            request = await read_request(reader)
            if request is None:
                return
            method, path, headers, body = request
            chaos.requests += 1
            fault = chaos.fault_for(method, path, headers.get("user-agent", ""))
            chaos.write(req=chaos.requests, method=method, path=path, fault=fault)
            if fault == "close":
                return
            if fault == "cut":
                writer.write(response(200, {"status": "cut short" + " " * 200})[:-150])
                await writer.drain()
                return
            if fault == "stall":
                await asyncio.sleep(chaos.stall_s)
                return
            if fault == "500":
                writer.write(response(500, {"error": {"code": "internal_error",
                                                      "message": "chaos", "retriable": True,
                                                      "request_id": "x"}}))  # fmt: skip
            else:
                writer.write(response(*route(method, path, body)))
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.transport.abort()


async def main(args: argparse.Namespace) -> None:
    faults = [f for f in args.faults.split(",") if f]
    chaos = Chaos(Path(args.log), faults, args.every, args.stall_s)
    chaos.paths = tuple(args.paths.split(","))
    server = await asyncio.start_server(
        lambda r, w: serve_connection(chaos, r, w), "127.0.0.1", 0, limit=MAX_HEAD
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await asyncio.sleep(args.lifetime_s)  # bounded: the test kills it long before


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--faults", default="")
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--stall-s", type=float, default=30.0)
    parser.add_argument("--paths", default=",".join(FAULTED))
    parser.add_argument("--lifetime-s", type=float, default=900.0)
    asyncio.run(main(parser.parse_args()))
