"""Connection-pool exhaustion: a 503 envelope marked retriable, counted in /health."""

import sqlite3
import threading
import time

import httpx

from tests.backend.helpers import (
    Backend,
    assert_envelope,
    bearer,
    login,
    seed_email,
)

POOL_TIMEOUT = 0.5


# A pool that holds one connection and waits half a second for it.
BACKEND_ENV = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": str(POOL_TIMEOUT)}


def test_pool_timeout_is_503_and_counted(backend: Backend) -> None:
    """While the only connection is stuck on a locked database, other requests get 503."""
    client = backend.client()
    headers = bearer(login(client, seed_email(1))["access_token"])
    assert client.get("/health").json()["checks"]["database"]["pool"]["timeouts"] == 0
    lock = sqlite3.connect(str(backend.db_path), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the backend's next write waits, holding its connection
    results: dict[str, int] = {}

    def write() -> None:
        with backend.client() as other:
            response = other.post("/api/patients/", json={"name": "Stuck"}, headers=headers)
            results["write"] = response.status_code

    writer = threading.Thread(target=write)
    try:
        writer.start()
        wait_until_checked_out(client, 1)
        error = assert_envelope(client.get("/api/patients/", headers=headers), 503)
        assert error["retriable"] is True and error["code"] == "pool_timeout"
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        writer.join(30)
    assert results["write"] == 200
    pool = client.get("/health").json()["checks"]["database"]["pool"]
    assert pool["timeouts"] >= 2 and pool["size"] == 1 and pool["max_overflow"] == 0


def wait_until_checked_out(client: httpx.Client, count: int, timeout: float = 10) -> None:
    """Poll /health (any status) until the pool reports ``count`` connections in use."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool = client.get("/health").json()["checks"]["database"]["pool"]
        if pool["checked_out"] == count:
            return
        time.sleep(0.05)
    raise AssertionError(f"pool never reached checked_out={count}")
