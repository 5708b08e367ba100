"""A tiny HTTP server on a thread (127.0.0.1, free port) with scripted routes, for these tests.

Routes: GET /health answers ``health_status`` with a pool block from ``pool``; GET /slow sleeps
``slow_s`` then 200; GET /limited answers 429; anything else 200. Every request is counted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    """What the server answers; tests change it between runs."""

    health_status: int = 200
    pool: dict = field(default_factory=lambda: {"size": 5, "max_overflow": 10, "checked_out": 1})
    slow_s: float = 0.05
    requests: int = 0


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()  # headers and body go out in two writes: no Nagle delay between them
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if status == 429:
                self.send_header("Retry-After", "60")
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            script.requests += 1
            path = self.path.split("?")[0]
            if path == "/health":
                pool = dict(script.pool)
                pool["overflow"] = pool["checked_out"] - pool["size"]
                checks = {"database": {"status": "healthy", "pool": pool}}
                self._send(script.health_status, {"status": "x", "checks": checks})
            elif path == "/slow":
                time.sleep(script.slow_s)
                self._send(200, {"ok": True})
            elif path == "/limited":
                self._send(429, {"error": {"code": "rate_limited"}})
            else:
                self._send(200, {"ok": True})

    return Handler


@contextmanager
def serve(script: Script | None = None) -> Iterator[tuple[str, Script]]:
    """Run the server for the duration of the block: yields (base URL, script)."""
    script = script or Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
