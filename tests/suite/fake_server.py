"""A small aiohttp server with one chosen defect, for proving that the load suites catch it.

Run as ``python tests/suite/fake_server.py --defect NAME`` (or ``none``); it binds 127.0.0.1 on a
free port and prints ``PORT <n>`` on its first line of output. It implements just enough of the
contract (login, the health routes, the session list, uploads, one session read) for the pytest
scenarios to run.

Defects:
- ``limiter500``: over a rate limit it answers 500 instead of 429;
- ``no_retry_after``: over a rate limit it answers 429 without a Retry-After header;
- ``leak``: every request keeps about 1 MB of memory for good (RSS grows ~1 MB per request).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import defaultdict, deque

from aiohttp import web

LIMITS = {"default": (100, 60.0), "upload": (10, 3600.0)}
DEFECTS = ("none", "limiter500", "no_retry_after", "leak")
REJECTED_PASSWORD = "Wrong@Password1"  # login with it answers 401
_LEAKED: list[bytes] = []


def _envelope(code: str, message: str, *, retriable: bool = False) -> dict:
    """The contract's error body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "retriable": retriable,
            "request_id": str(uuid.uuid4()),
        }
    }


class Limiter:
    """A moving-window limiter keyed by (user, bucket)."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def allow(self, user: str, bucket: str) -> tuple[bool, int]:
        """Count one hit; return whether it is allowed and the seconds until a slot frees."""
        limit, window = LIMITS[bucket]
        now = time.monotonic()
        hits = self.hits[(user, bucket)]
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return False, max(1, int(hits[0] + window - now) + 1)
        hits.append(now)
        return True, 0


def _refusal(defect: str, retry_after: int) -> web.Response:
    """What this server answers over a limit: a proper 429, or the chosen defect."""
    if defect == "limiter500":
        return web.json_response(_envelope("internal_error", "limiter crashed"), status=500)
    body = _envelope("rate_limited", "Too many requests", retriable=True)
    if defect == "no_retry_after":
        return web.json_response(body, status=429)
    return web.json_response(body, status=429, headers={"Retry-After": str(retry_after)})


def _user(request: web.Request) -> str | None:
    """The user named by the bearer token, or None."""
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer tok-") :] if auth.startswith("Bearer tok-") else None


def _session(user: str, status: str) -> dict:
    """A session body in the contract's shape (only the fields the suite reads matter)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "id": str(uuid.uuid4()),
        "patient_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, user)),
        "therapist_id": user,
        "status": status,
        "created_at": now,
        "updated_at": now,
    }


def build_app(defect: str) -> web.Application:
    """The application, with the defect wired in."""
    limiter = Limiter()

    @web.middleware
    async def leak_and_limit(request: web.Request, handler):
        if defect == "leak":
            _LEAKED.append(b"\x01" * (1 << 20))
        if request.path in ("/", "/health", "/ready", "/live", "/api/v1/login"):
            return await handler(request)
        user = _user(request)
        if user is None:
            return web.json_response(_envelope("unauthorized", "no token"), status=401)
        buckets = ["default"] + (["upload"] if request.path.endswith("/upload") else [])
        for bucket in buckets:
            allowed, retry_after = limiter.allow(user, bucket)
            if not allowed:
                return _refusal(defect, retry_after)
        return await handler(request)

    app = web.Application(middlewares=[leak_and_limit])
    app.router.add_routes(_routes())
    return app


def _routes() -> list[web.RouteDef]:
    """The contract routes this fake implements."""
    pool = {"size": 5, "checked_in": 1, "checked_out": 0, "overflow": -4}

    async def root(_: web.Request) -> web.Response:
        return web.json_response({"service": "fake", "version": "0", "status": "running"})

    async def health(_: web.Request) -> web.Response:
        db = {"status": "healthy", "response_time_ms": 0.1, "pool": pool}
        return web.json_response(
            {"status": "healthy", "timestamp": int(time.time()), "checks": {"database": db}}
        )

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "timestamp": int(time.time())})

    async def login(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("password") == REJECTED_PASSWORD:
            return web.json_response(_envelope("invalid_credentials", "bad login"), status=401)
        return web.json_response(
            {
                "access_token": f"tok-{body['email']}",
                "refresh_token": f"refresh-{uuid.uuid4()}",
                "token_type": "bearer",
                "expires_in": 1800,
            }
        )

    async def patients(request: web.Request) -> web.Response:
        user = _user(request) or ""
        patient = {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, user)), "name": "Fake Patient"}
        return web.json_response([patient] if request.method == "GET" else patient)

    async def sessions(request: web.Request) -> web.Response:
        return web.json_response([_session(_user(request) or "", "processed")])

    async def one_session(request: web.Request) -> web.Response:
        body = _session(_user(request) or "", "processed")
        body["id"] = request.match_info["session_id"]
        return web.json_response(body)

    async def upload(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(_session(_user(request) or "", "uploading"))

    return [
        web.get("/", root),
        web.get("/health", health),
        web.get("/ready", ready),
        web.get("/live", live),
        web.post("/api/v1/login", login),
        web.get("/api/patients/", patients),
        web.post("/api/patients/", patients),
        web.get("/api/sessions/", sessions),
        web.get("/api/sessions/{session_id}", one_session),
        web.post("/api/sessions/upload", upload),
    ]


async def _serve(defect: str) -> None:
    """Serve on a free loopback port until killed, announcing the port on stdout."""
    runner = web.AppRunner(build_app(defect), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp exposes no public getter
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Parse the defect name and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defect", choices=DEFECTS, default="none")
    asyncio.run(_serve(parser.parse_args().defect))


if __name__ == "__main__":
    main()
