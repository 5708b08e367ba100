"""Backend test fixtures: each module's backend and HTTP client, a fresh PostgreSQL database.

A test module declares its settings as ``BACKEND_ENV`` (a dict, or a function returning one, for
settings known only at run time) and optionally ``BACKEND_WORKERS``; the ``backend`` fixture here
starts that backend once per module (tests/backends.py) and stops it afterwards.
"""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.backends import Backend, running_backend
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
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The module's backend: FAST_ENV plus the module's BACKEND_ENV, BACKEND_WORKERS workers."""
    env = getattr(request.module, "BACKEND_ENV", {})
    env = env() if callable(env) else env
    workers = getattr(request.module, "BACKEND_WORKERS", 1)
    folder = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with running_backend(folder, env, workers=workers) as started:
        yield started


@pytest.fixture(scope="module")
def client(backend: Backend) -> Iterator[httpx.Client]:
    """An HTTP client for the module's backend."""
    with backend.client() as http:
        yield http
