"""Accounts and tokens: signup, login, refresh (rotating), logout and the current user."""

import secrets
import uuid

from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend import crud
from reference_backend.api.deps import (
    UNAUTHENTICATED,
    CurrentUser,
    LimitsDep,
    SessionDep,
    SettingsDep,
    bearer_token,
)
from reference_backend.core.config import Settings
from reference_backend.core.errors import ApiError
from reference_backend.core.security import (
    TokenUser,
    create_access_token,
    hash_password,
    verify_password,
)
from reference_backend.schemas import (
    LoginRequest,
    Message,
    RefreshRequest,
    Tokens,
    UserCreate,
    UserPublic,
)

router = APIRouter(prefix="/api/v1", tags=["auth"])
_dummy_hash: dict[int, str] = {}


async def issue_tokens(
    session: AsyncSession, *, user_id: uuid.UUID, role: str, settings: Settings
) -> Tokens:
    """A new access token and a stored refresh token; the caller commits."""
    access = create_access_token(
        TokenUser(user_id, role),
        secret=settings.jwt_secret.get_secret_value(),
        expires_in=settings.access_token_expire_seconds,
    )
    refresh = await crud.add_refresh_token(
        session, user_id=user_id, lifetime=settings.refresh_token_expire_seconds
    )
    return Tokens(
        access_token=access, refresh_token=refresh, expires_in=settings.access_token_expire_seconds
    )


async def _dummy_password_hash(rounds: int) -> str:
    """A hash to check unknown emails against, so they cost as much as known ones."""
    if rounds not in _dummy_hash:
        _dummy_hash[rounds] = await hash_password(secrets.token_urlsafe(16), rounds)
    return _dummy_hash[rounds]


def _bad_credentials() -> ApiError:
    return ApiError(401, "Incorrect email or password", code="invalid_credentials")


@router.post("/signup", status_code=201)
async def signup(
    data: UserCreate, session: SessionDep, settings: SettingsDep, limits: LimitsDep
) -> Tokens:
    """Create an account and sign it in."""
    await limits.hit("signup")
    if await crud.get_user_by_email(session, email=data.email):
        raise ApiError(409, "An account with this email already exists", code="email_taken")
    hashed = await hash_password(
        data.password, settings.bcrypt_rounds, on_loop=settings.password_hash_on_loop
    )
    try:
        user = await crud.create_user(session, data=data, hashed_password=hashed)
        tokens = await issue_tokens(session, user_id=user.id, role=user.role, settings=settings)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            409, "An account with this email already exists", code="email_taken"
        ) from None
    return tokens


@router.post("/login")
async def login(
    data: LoginRequest, session: SessionDep, settings: SettingsDep, limits: LimitsDep
) -> Tokens:
    """Exchange email and password for tokens (bcrypt runs in a worker thread)."""
    email = data.email.strip().lower()
    await limits.hit("login", email=email)
    user = await crud.get_user_by_email(session, email=email)
    on_loop = settings.password_hash_on_loop
    if user is None:
        dummy = await _dummy_password_hash(settings.bcrypt_rounds)
        await verify_password(data.password, dummy, on_loop=on_loop)
        raise _bad_credentials()
    if not await verify_password(data.password, user.hashed_password, on_loop=on_loop):
        raise _bad_credentials()
    if not user.is_active:
        raise _bad_credentials()
    tokens = await issue_tokens(session, user_id=user.id, role=user.role, settings=settings)
    await session.commit()
    return tokens


@router.post("/refresh")
async def refresh(
    data: RefreshRequest, session: SessionDep, settings: SettingsDep, limits: LimitsDep
) -> Tokens:
    """Rotate a refresh token: the old one stops working, reuse is 401."""
    await limits.hit("refresh")
    user_id = await crud.consume_refresh_token(session, token=data.refresh_token)
    user = await crud.get_user(session, user_id=user_id) if user_id else None
    if user is None or not user.is_active:
        await session.rollback()
        raise ApiError(401, "Invalid or expired refresh token", headers=UNAUTHENTICATED)
    tokens = await issue_tokens(session, user_id=user.id, role=user.role, settings=settings)
    await session.commit()
    return tokens


@router.post("/logout")
async def logout(
    request: Request,
    data: RefreshRequest,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> Message:
    """Revoke the given refresh token (it must be the caller's) and, with LOGOUT_REVOKES_ACCESS,
    the access token that called (the deployed service leaves it valid)."""
    await limits.hit("default", user=user)
    revoked = await crud.consume_refresh_token(session, token=data.refresh_token, user_id=user.id)
    if revoked is None:
        await session.rollback()
        raise ApiError(401, "Invalid or expired refresh token", headers=UNAUTHENTICATED)
    await session.commit()
    token = bearer_token(request)
    if settings.logout_revokes_access and token:
        lifetime = settings.access_token_expire_seconds
        await request.app.state.revocations.revoke(token, lifetime)
    return Message(message="Logged out")


@router.get("/me")
async def me(user: CurrentUser, session: SessionDep, limits: LimitsDep) -> UserPublic:
    """The signed-in user's profile."""
    await limits.hit("default", user=user)
    row = await crud.get_user(session, user_id=user.id)
    if row is None:
        raise ApiError(401, "The token's user no longer exists", headers=UNAUTHENTICATED)
    return UserPublic.model_validate(row)
