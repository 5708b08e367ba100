"""FastAPI dependencies as Annotated aliases: database session, settings, callers and limits."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend.core.config import Settings
from reference_backend.core.db import Database
from reference_backend.core.errors import ApiError
from reference_backend.core.security import TokenUser, decode_access_token
from reference_backend.services.limits import RateLimiter
from reference_backend.services.processing import Processor

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
    """The peer address the limits key on (X-Forwarded-For only with TRUST_PROXY_HEADERS)."""
    return request.client.host if request.client else "unknown"


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(request: Request) -> TokenUser:
    """The user named by a valid Bearer access token; MISSING_AUTH_STATUS without one, bad or
    logged-out (LOGOUT_REVOKES_ACCESS) 401."""
    token = _bearer_token(request)
    if token is None:
        status = request.app.state.settings.missing_auth_status
        headers = UNAUTHENTICATED if status == 401 else {}
        raise ApiError(status, "Not authenticated", headers=headers)
    secret = request.app.state.settings.jwt_secret.get_secret_value()
    user = decode_access_token(token, secret=secret)
    if user is None or await _logged_out(request, token):
        raise ApiError(401, "Invalid or expired token", headers=UNAUTHENTICATED)
    return user


async def _logged_out(request: Request, token: str) -> bool:
    if not request.app.state.settings.logout_revokes_access:
        return False
    return await request.app.state.revocations.revoked(token)


def bearer_token(request: Request) -> str | None:
    """The request's Bearer token, if any (logout revokes it)."""
    return _bearer_token(request)


def optional_user(request: Request) -> TokenUser | None:
    """The user of a valid token, else None (no token, or a bad one: nobody is refused)."""
    token = _bearer_token(request)
    secret = request.app.state.settings.jwt_secret.get_secret_value()
    return decode_access_token(token, secret=secret) if token else None


@dataclass(frozen=True)
class Caller:
    """Who calls a data route, and whose rows they may see (``scope`` None: everyone's)."""

    user: TokenUser | None
    scope: uuid.UUID | None


async def data_caller(request: Request) -> Caller:
    """The caller of a patient or session route, per AUTH_ON_DATA_ROUTES and OWNERSHIP_CHECKS."""
    settings: Settings = request.app.state.settings
    user = await authenticate(request) if settings.auth_on_data_routes else optional_user(request)
    scope = user.id if user is not None and settings.ownership_checks else None
    return Caller(user, scope)


class Limits:
    """Counts a request on named limits, keyed per LIMIT_KEY; refuses per LIMIT_RESPONSE.

    Routes call ``hit`` first thing in their body, so a request counts once the route runs: a
    401/404/400 counts, a 422 (rejected before the route runs) does not.
    """

    def __init__(self, request: Request) -> None:
        self.limiter: RateLimiter = request.app.state.limiter
        self.settings: Settings = request.app.state.settings
        self.address = client_address(request)

    def key(self, user: TokenUser | None, email: str | None) -> str:
        """The user where LIMIT_KEY=user and there is one; else the address (login: + email)."""
        if self.settings.limit_key == "address":
            return f"addr:{self.address}"
        if user is not None:
            return f"user:{user.id}"
        return f"addr:{self.address}" + (f":email:{email}" if email else "")

    async def hit(
        self, *names: str, user: TokenUser | None = None, email: str | None = None
    ) -> None:
        """Count one hit on each named limit; raise the refusal when over any of them."""
        retry_after = await self.limiter.retry_after(list(names), self.key(user, email))
        if retry_after:
            raise self.refusal(names, retry_after)

    def refusal(self, names: tuple[str, ...], retry_after: int) -> ApiError:
        """429 with Retry-After, or (LIMIT_RESPONSE=500) a 500 that closes the connection."""
        if self.settings.limit_response == 500:
            return ApiError(
                500,
                "Internal Server Error",
                code="INTERNAL_SERVER_ERROR",
                headers={"Connection": "close"},
            )
        message = f"Rate limit exceeded ({', '.join(names)}); retry in {retry_after} s"
        headers = {"Retry-After": str(retry_after)} if self.settings.limit_retry_after else {}
        return ApiError(429, message, headers=headers)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ProcessorDep = Annotated[Processor, Depends(get_processor)]
ClientAddress = Annotated[str, Depends(client_address)]
CurrentUser = Annotated[TokenUser, Depends(authenticate)]
DataCaller = Annotated[Caller, Depends(data_caller)]
LimitsDep = Annotated[Limits, Depends(Limits)]
