"""Backend test fixtures: an HTTP client per module, a fresh PostgreSQL database per session."""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.backend.helpers import Backend
from tests.services import require_service


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _plain_postgres_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a database created for this test session (dropped afterwards)."""
    server = _plain_postgres_url(require_service("PostgreSQL", "TEST_POSTGRES_URL"))
    name = f"tb_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    base, _, _ = server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def client(backend: Backend) -> Iterator[httpx.Client]:
    """An HTTP client for the module's backend (each test module defines its own ``backend``)."""
    with backend.client() as http:
        yield http
