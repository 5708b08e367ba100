"""The FastAPI application: state built in the lifespan, routers and error handling installed."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from reference_backend import __version__
from reference_backend.api.leak import LeakMiddleware
from reference_backend.api.routes import auth, health, patients, sessions
from reference_backend.core.config import Settings, get_settings
from reference_backend.core.db import create_database
from reference_backend.core.errors import install_error_handlers
from reference_backend.services.limits import RateLimiter, create_storage
from reference_backend.services.processing import Processor
from reference_backend.services.revocation import Revocations


def _lifespan(settings: Settings):  # noqa: ANN202 - FastAPI lifespan factory
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = create_database(settings)
        storage = create_storage(settings)
        processor = Processor(
            database, delay=settings.processing_delay_seconds, model=settings.processing_model
        )
        app.state.settings = settings
        app.state.database = database
        app.state.limiter = RateLimiter(settings, storage)
        app.state.revocations = Revocations(storage, settings.rate_limit_key_prefix)
        app.state.processor = processor
        try:
            yield
        finally:
            await processor.shutdown()
            await storage.close()
            await database.dispose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; uvicorn calls this in every worker process."""
    settings = settings or get_settings()
    level = "DEBUG" if settings.log_level == "trace" else settings.log_level.upper()
    logging.basicConfig(level=level, format="%(levelname)s:     %(name)s: %(message)s")
    app = FastAPI(
        title="TherapyBridge reference backend", version=__version__, lifespan=_lifespan(settings)
    )
    install_error_handlers(app)
    for module in (health, auth, patients, sessions):
        app.include_router(module.router)
    if settings.leak_bytes_per_request:
        app.add_middleware(LeakMiddleware, size=settings.leak_bytes_per_request)
    return app
