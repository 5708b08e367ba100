"""A server of known capacity: one FIFO worker with a fixed service time, on 127.0.0.1.

    python tests/capacity/fifo_server.py --service-ms 25     # prints "port N", serves until killed

Every request, whatever its route, waits for the one worker (an asyncio lock, first come first
served) and holds it for the service time: the server answers at most 1000 / service-ms requests
a second, however many connections are open. It answers the routes a capacity search sends: login
(a token), /api/v1/me (an id), the collection routes (a list of one id), anything else an object
with an id; /health has no pool block, so nothing polls it beside the mix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

LIST_ROUTES = ("/api/sessions/", "/api/patients/")
TOKEN = {"access_token": "fifo-token", "refresh_token": "fifo-refresh", "token_type": "bearer",
         "expires_in": 1800}  # fmt: skip


def answer(method: str, path: str) -> bytes:
    """The JSON body the route answers."""
    route = path.split("?", 1)[0]
    if route in ("/api/v1/login", "/api/v1/refresh"):
        return json.dumps(TOKEN).encode()
    if route in LIST_ROUTES and method == "GET":
        return json.dumps([{"id": "00000000-0000-0000-0000-000000000001"}]).encode()
    return json.dumps({"id": "00000000-0000-0000-0000-000000000002", "status": "ok"}).encode()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """(method, path) of the next request on the connection, its body read; None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = next((int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                   if k.strip().lower() == "content-length"), 0)  # fmt: skip
    if length:
        await reader.readexactly(length)
    return method, path


def serve_forever(service_s: float) -> None:
    """Listen on a free port, print it, serve one request at a time."""
    worker = asyncio.Lock()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                async with worker:  # FIFO: asyncio.Lock wakes its waiters in order
                    await asyncio.sleep(service_s)
                    body = answer(*request)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--service-ms", type=float, default=25.0)
    serve_forever(parser.parse_args().service_ms / 1000)
    sys.exit(0)
