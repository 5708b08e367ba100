"""The async engine, its connection pool, pool statistics and the pool time-out counter."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from reference_backend.core.config import Settings, sqlite_path

SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass
class PoolTimeouts:
    """Counts pool check-out time-outs since the process started."""

    count: int = 0

    def record(self) -> None:
        """Note one more time-out."""
        self.count += 1


POOL_TIMEOUTS = PoolTimeouts()


class CountingQueuePool(AsyncAdaptedQueuePool):
    """The standard async queue pool, counting check-outs that time out."""

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            if not getattr(exc, "counted", False):  # _do_get recurses; count once
                exc.counted = True  # type: ignore[attr-defined]
                POOL_TIMEOUTS.record()
            raise


@dataclass
class Database:
    """One engine and its session factory: the only way the app reaches the database."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    timeouts: PoolTimeouts = field(default_factory=lambda: POOL_TIMEOUTS)

    def pool_stats(self) -> dict[str, Any]:
        """SQLAlchemy's pool counters plus this backend's extras, as /health reports them."""
        pool = self.engine.pool
        return {
            "size": pool.size(),
            "checked_in": pool.checkedin(),
            "checked_out": pool.checkedout(),
            "overflow": pool.overflow(),
            "max_overflow": self.settings.db_max_overflow,
            "timeout_seconds": self.settings.db_pool_timeout,
            "timeouts": self.timeouts.count,
        }

    async def session(self) -> AsyncIterator[AsyncSession]:
        """Yield a session that returns its connection to the pool when done."""
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    """A pooled async engine for SQLite (WAL, busy time-out) or PostgreSQL (asyncpg)."""
    url = settings.database_url
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        db_file = sqlite_path(url)
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    engine = create_async_engine(
        url,
        poolclass=CountingQueuePool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        connect_args=connect_args,
    )
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_database(settings: Settings) -> Database:
    """Build the engine and session factory for one process."""
    engine = create_engine(settings)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessionmaker=factory, settings=settings)
