"""Service probes: `/`, `/health` (database and pool), `/ready` and `/live`."""

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from reference_backend import __version__
from reference_backend.api.deps import DatabaseDep
from reference_backend.core.db import Database

router = APIRouter(tags=["health"])
SERVICE_NAME = "TherapyBridge reference backend"


@router.get("/")
async def root() -> dict[str, str]:
    """Service name, version and status."""
    return {"service": SERVICE_NAME, "version": __version__, "status": "running"}


async def check_database(database: Database) -> dict[str, Any]:
    """Run `SELECT 1` through the pool; status, time taken and the pool's counters."""
    started = time.perf_counter()
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        status: dict[str, Any] = {"status": "healthy"}
    except Exception as exc:  # any failure is the answer to "is the database up?"
        status = {"status": "unhealthy", "error": type(exc).__name__}
    status["response_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    status["pool"] = database.pool_stats()
    return status


@router.get("/health")
async def health(database: DatabaseDep) -> JSONResponse:
    """Database check with pool figures; 503 when the database check fails."""
    db_check = await check_database(database)
    healthy = db_check["status"] == "healthy"
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": int(time.time()),
        "checks": {
            "database": db_check,
            "openai": {"status": "degraded", "message": "API key not configured"},
        },
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/ready")
async def ready(database: DatabaseDep) -> JSONResponse:
    """Ready when the database answers."""
    db_check = await check_database(database)
    if db_check["status"] == "healthy":
        return JSONResponse({"status": "ready"})
    body = {"status": "not_ready", "reason": "database unavailable", "database": db_check}
    return JSONResponse(body, status_code=503)


@router.get("/live")
async def live() -> dict[str, Any]:
    """Alive as long as the process answers; no dependencies."""
    return {"status": "alive", "timestamp": int(time.time())}
