"""A tiny stand-in server for loadkit's tests, run as a subprocess: ``python fake_server.py``.

It listens on 127.0.0.1 on a free port and prints that port on its first line of stdout.
Routes: GET /alloc?mb=N keeps N MB resident; GET /busy?s=S spins the CPU for S seconds (at most 10);
GET /health answers the next of a fixed, varied sequence (HEALTH_BODIES); anything else 200.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

POOL = {"size": 5, "checked_in": 4, "checked_out": 1, "overflow": -4}
HEALTH_BODIES = [
    (200, {"status": "healthy", "checks": {"database": {"status": "healthy", "pool": POOL}}}),
    (200, {"status": "healthy", "checks": {"database": {"status": "healthy"}}}),  # no pool
    (200, "not json"),
    (
        200,
        {
            "checks": {
                "database": {
                    "pool": {
                        **POOL,
                        "checked_out": 15,
                        "overflow": 10,
                        "max_overflow": 10,
                        "engine": "primary",
                        "timeouts": 0,
                    }
                }
            }
        },
    ),
    (
        503,
        {"status": "unhealthy", "checks": {"database": {"pool": {"size": "five", "timeouts": 2}}}},
    ),
    (200, {"checks": {"database": {"pool": {"checked_out": 3, "surprise": [1, 2]}}}}),
]

_kept: list[bytes] = []
_health_calls = 0


class Handler(BaseHTTPRequestHandler):
    """Serves the routes of the module docstring."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        global _health_calls
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/alloc":
            _kept.append(b"\x01" * (int(query.get("mb", "30")) * 1024 * 1024))
            self._send(200, {"kept_mb": len(_kept) * int(query.get("mb", "30"))})
        elif url.path == "/busy":
            end = time.monotonic() + min(float(query.get("s", "1")), 10.0)
            n = 0
            while time.monotonic() < end:
                n += 1
            self._send(200, {"spins": n})
        elif url.path == "/health":
            status, body = HEALTH_BODIES[_health_calls % len(HEALTH_BODIES)]
            _health_calls += 1
            self._send(status, body)
        else:
            self._send(200, {"status": "ok"})


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 120)
    server.timeout = 0.2
    while time.monotonic() < deadline:  # bounded: never outlives its test by long
        server.handle_request()


if __name__ == "__main__":
    main()
