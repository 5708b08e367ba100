"""Several workers share one quota through Redis (and one JWT secret)."""

import uuid

import psutil
import pytest

from tests.backend.helpers import Backend, RawHttp, login, seed_email
from tests.services import require_service

pytestmark = pytest.mark.services
DEFAULT_LIMIT = 10
LOGIN_LIMIT = 3
REQUESTS = 30
MAX_BATCHES = 5


BACKEND_WORKERS = 2


def BACKEND_ENV() -> dict[str, str]:  # noqa: N802 - the conftest reads this name
    """Limits in Redis under a prefix no other run uses; the parent makes the shared secret."""
    return {
        "RATE_LIMIT_STORAGE": require_service("Redis", "TEST_REDIS_URL"),
        "RATE_LIMIT_KEY_PREFIX": f"tb-test-{uuid.uuid4().hex}:",
        "RATE_LIMIT_DEFAULT": f"{DEFAULT_LIMIT}/minute",
        "RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT}/minute",
        "JWT_SECRET": "",
    }


def send_on_fresh_connections(backend: Backend, request: bytes) -> tuple[list[int], list[RawHttp]]:
    """Send one request on each of REQUESTS new connections, kept open; the statuses."""
    connections = [RawHttp(backend.process.port) for _ in range(REQUESTS)]
    statuses = []
    for connection in connections:
        connection.send(request)
        statuses.append(connection.read_response()[0])
    return statuses, connections


def serving_workers(backend: Backend, connections: list[RawHttp]) -> set[int]:
    """Which of the backend's worker processes hold the server side of these connections."""
    workers = {c.pid for c in psutil.Process(backend.process.pid).children(recursive=True)}
    pairs = {c.sock.getsockname() for c in connections}
    return {
        entry.pid
        for entry in psutil.net_connections(kind="tcp")
        if entry.pid in workers and entry.raddr and tuple(entry.raddr) in pairs
    }


def close_all(connections: list[RawHttp]) -> None:
    """Close every connection."""
    for connection in connections:
        connection.close()


def test_default_limit_is_shared_across_workers(backend: Backend) -> None:
    """Requests spread over both workers get exactly one quota between them, and no 401."""
    with backend.client() as client:
        token = login(client, seed_email(1))["access_token"]
    request = f"GET /api/patients/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    statuses: list[int] = []
    pids: set[int] = set()
    for _ in range(MAX_BATCHES):  # the kernel may hand one batch to a single worker
        batch, connections = send_on_fresh_connections(backend, request.encode())
        try:
            pids |= serving_workers(backend, connections)
        finally:
            close_all(connections)
        statuses += batch
        if len(pids) == 2:
            break
    assert len(pids) == 2, f"expected both workers to serve, got {pids}"
    assert statuses.count(200) == DEFAULT_LIMIT
    assert statuses.count(429) == len(statuses) - DEFAULT_LIMIT


def test_login_limit_is_shared_across_workers(backend: Backend) -> None:
    """Login attempts for one email over both workers are refused after one shared quota."""
    body = b'{"email": "%s", "password": "Wrong@Pass123"}' % seed_email(2).encode()
    request = (
        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    statuses, connections = send_on_fresh_connections(backend, request)
    close_all(connections)
    assert statuses.count(401) == LOGIN_LIMIT
    assert statuses.count(429) == REQUESTS - LOGIN_LIMIT
