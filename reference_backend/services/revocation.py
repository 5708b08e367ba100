"""Access tokens ended by logout (LOGOUT_REVOKES_ACCESS), remembered until they would expire.

Kept where the limits are: in this process for ``memory://``, in Redis for ``redis://`` (so every
worker refuses a token any worker logged out). Only a digest of the token is kept.
"""

import time

from reference_backend.core.security import token_digest
from reference_backend.services.limits import RedisStorage, Storage

SWEEP_AT = 10_000


class Revocations:
    """The logged-out access tokens of this server."""

    def __init__(self, storage: Storage, prefix: str = "tb-limits:") -> None:
        self._redis = storage.redis if isinstance(storage, RedisStorage) else None
        self._key = prefix + "revoked:"
        self._local: dict[str, float] = {}

    async def revoke(self, token: str, lifetime_s: int) -> None:
        """End ``token`` now; forget it after ``lifetime_s`` (it has expired by then)."""
        digest = token_digest(token)
        if self._redis is not None:
            await self._redis.set(self._key + digest, 1, ex=max(1, lifetime_s))
            return
        now = time.time()
        if len(self._local) >= SWEEP_AT:
            self._local = {d: t for d, t in self._local.items() if t > now}
        self._local[digest] = now + lifetime_s

    async def revoked(self, token: str) -> bool:
        """Whether ``token`` was logged out."""
        digest = token_digest(token)
        if self._redis is not None:
            return bool(await self._redis.exists(self._key + digest))
        return self._local.get(digest, 0.0) > time.time()
