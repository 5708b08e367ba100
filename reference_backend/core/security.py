"""Password hashing (bcrypt, off the event loop), JWT access tokens and refresh-token digests."""

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import anyio.to_thread
import bcrypt
import jwt

ALGORITHM = "HS256"
BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class TokenUser:
    """Who an access token speaks for."""

    id: uuid.UUID
    role: str


def hash_password_sync(password: str, rounds: int) -> str:
    """bcrypt hash at the given cost (blocking: call from a thread)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


async def hash_password(password: str, rounds: int, *, on_loop: bool = False) -> str:
    """bcrypt hash computed in a worker thread (on the event loop itself with ``on_loop``)."""
    if on_loop:  # PASSWORD_HASH_ON_LOOP: the planted defect of a blocking call in async code
        return hash_password_sync(password, rounds)
    return await anyio.to_thread.run_sync(hash_password_sync, password, rounds)


def _verify_sync(password: str, hashed: str) -> bool:
    secret = password.encode()
    if len(secret) > BCRYPT_MAX_BYTES:
        return False
    return bcrypt.checkpw(secret, hashed.encode())


async def verify_password(password: str, hashed: str, *, on_loop: bool = False) -> bool:
    """Check a password against its hash in a worker thread (on the loop with ``on_loop``)."""
    if on_loop:
        return _verify_sync(password, hashed)
    return await anyio.to_thread.run_sync(_verify_sync, password, hashed)


def create_access_token(user: TokenUser, *, secret: str, expires_in: int) -> str:
    """A signed JWT naming the user and role, valid for ``expires_in`` seconds."""
    now = int(time.time())
    claims = {"sub": str(user.id), "role": user.role, "type": "access", "iat": now}
    claims["jti"] = uuid.uuid4().hex  # two logins in one second still get distinct tokens
    claims["exp"] = now + expires_in
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> TokenUser | None:
    """The token's user, or None when it is expired, tampered with or not an access token."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        if claims.get("type") != "access":
            return None
        return TokenUser(id=uuid.UUID(claims["sub"]), role=str(claims.get("role", "")))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def new_refresh_token() -> str:
    """An opaque random refresh token (only its digest is stored)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a refresh token, as stored in the database."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_jwt_secret() -> str:
    """A random signing secret for when JWT_SECRET is not set."""
    return secrets.token_urlsafe(48)
