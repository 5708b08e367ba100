"""FastAPI dependencies as Annotated aliases: database session, settings, the current user."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend.config import Settings
from reference_backend.db import Database
from reference_backend.errors import ApiError
from reference_backend.limits import RateLimiter
from reference_backend.processing import Processor
from reference_backend.security import TokenUser, decode_access_token

UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


def get_database(request: Request) -> Database:
    """The process's database."""
    return request.app.state.database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; its connection returns to the pool afterwards."""
    async with request.app.state.database.sessionmaker() as session:
        yield session


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_processor(request: Request) -> Processor:
    """The background processor."""
    return request.app.state.processor


def client_address(request: Request) -> str:
    """The peer address the limits key on (proxy headers are not trusted)."""
    return request.client.host if request.client else "unknown"


async def enforce_limits(request: Request, names: list[str], key: str) -> None:
    """Count one hit on each named limit for ``key``; 429 with Retry-After when over."""
    limiter: RateLimiter = request.app.state.limiter
    retry_after = await limiter.retry_after(names, key)
    if retry_after:
        message = f"Rate limit exceeded ({', '.join(names)}); retry in {retry_after} s"
        raise ApiError(429, message, headers={"Retry-After": str(retry_after)})


def authenticate(request: Request) -> TokenUser:
    """The user named by a valid Bearer access token, else 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Not authenticated", headers=UNAUTHENTICATED)
    user = decode_access_token(token.strip(), secret=request.app.state.settings.jwt_secret)
    if user is None:
        raise ApiError(401, "Invalid or expired token", headers=UNAUTHENTICATED)
    return user


def limited_user(*names: str) -> Callable[[Request], Awaitable[TokenUser]]:
    """Dependency: authenticate, then count the request on the named limits for that user."""

    async def dependency(request: Request) -> TokenUser:
        user = authenticate(request)
        await enforce_limits(request, list(names), f"user:{user.id}")
        return user

    return dependency


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ProcessorDep = Annotated[Processor, Depends(get_processor)]
ClientAddress = Annotated[str, Depends(client_address)]
CurrentUser = Annotated[TokenUser, Depends(limited_user("default"))]
UploadUser = Annotated[TokenUser, Depends(limited_user("default", "upload"))]
ExtractUser = Annotated[TokenUser, Depends(limited_user("default", "extract"))]
