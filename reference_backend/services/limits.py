"""Moving-window rate limiter with in-memory and Redis storage.

A request acquires one hit on each of its limits at once: either all are granted and recorded,
or none is recorded and the caller learns how long to wait. A refused request changes nothing.
"""

import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from reference_backend.core.config import Settings, parse_rate

SWEEP_EVERY = 10_000


@dataclass(frozen=True)
class Limit:
    """At most ``count`` hits in any ``window`` seconds."""

    count: int
    window: int

    @classmethod
    def parse(cls, text: str) -> "Limit | None":
        """Build from ``"100/minute"``; None for ``"none"`` (no limit)."""
        parsed = parse_rate(text)
        return cls(*parsed) if parsed else None


class Storage(Protocol):
    """Where hits are recorded."""

    async def acquire(self, items: list[tuple[str, Limit]]) -> float:
        """Record one hit on every key, or none; return 0, or seconds until a retry can pass."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryStorage:
    """Per-process storage: one deque of hit times per key (exact moving window)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._calls = 0

    async def acquire(self, items: list[tuple[str, Limit]]) -> float:
        """No await inside, so check-and-record is atomic on the event loop."""
        now = time.monotonic()
        wait = max(self._wait(key, limit, now) for key, limit in items)
        if wait <= 0:
            for key, _ in items:
                self._hits.setdefault(key, deque()).append(now)
        self._maybe_sweep(now, max(limit.window for _, limit in items))
        return wait

    def _wait(self, key: str, limit: Limit, now: float) -> float:
        hits = self._hits.get(key)
        if hits is None:
            return 0.0
        while hits and hits[0] <= now - limit.window:
            hits.popleft()
        if len(hits) < limit.count:
            return 0.0
        return hits[-limit.count] + limit.window - now

    def _maybe_sweep(self, now: float, window: int) -> None:
        self._calls += 1
        if self._calls % SWEEP_EVERY:
            return
        horizon = now - 86400
        stale = [k for k, hits in self._hits.items() if not hits or hits[-1] < horizon]
        for key in stale:
            del self._hits[key]

    async def close(self) -> None:
        """Nothing to release."""


ACQUIRE_SCRIPT = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= count then
    local edge = redis.call('ZRANGE', key, -count, -count, 'WITHSCORES')
    local key_wait = tonumber(edge[2]) + window - now
    if key_wait > wait then wait = key_wait end
  end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return '0'
"""


class RedisStorage:
    """Shared storage: one sorted set of hit times per key, updated by one atomic Lua script."""

    def __init__(self, url: str, prefix: str = "tb-limits:") -> None:
        self._redis = Redis.from_url(url)
        self._script = self._redis.register_script(ACQUIRE_SCRIPT)
        self._prefix = prefix

    async def acquire(self, items: list[tuple[str, Limit]]) -> float:
        """Run the script with the wall-clock time in milliseconds."""
        keys = [self._prefix + key for key, _ in items]
        args: list[str | int] = [int(time.time() * 1000), uuid.uuid4().hex]
        for _, limit in items:
            args += [limit.count, limit.window * 1000]
        wait_ms = float(await self._script(keys=keys, args=args))
        return wait_ms / 1000

    @property
    def redis(self) -> Redis:
        """The client (the logout revocations share it)."""
        return self._redis

    async def ping(self) -> None:
        """Raise if Redis is unreachable."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


class RateLimiter:
    """The named limits of the contract, applied through one storage."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.enabled = settings.rate_limit_enabled
        self.storage = storage
        self.limits = {
            "default": Limit.parse(settings.rate_limit_default),
            "login": Limit.parse(settings.rate_limit_login),
            "signup": Limit.parse(settings.rate_limit_signup),
            "refresh": Limit.parse(settings.rate_limit_refresh),
            "upload": Limit.parse(settings.rate_limit_upload),
            "extract": Limit.parse(settings.rate_limit_extract),
        }

    async def retry_after(self, names: list[str], key: str) -> int:
        """Record a hit on each named limit for ``key``; 0 when granted, else whole seconds."""
        items = [(f"{name}:{key}", limit) for name in names if (limit := self.limits[name])]
        if not self.enabled or not items:
            return 0
        wait = await self.storage.acquire(items)
        return max(1, math.ceil(wait)) if wait > 0 else 0


def create_storage(settings: Settings) -> Storage:
    """Memory storage for ``memory://``, Redis for ``redis://``."""
    if settings.limiter_in_memory:
        return MemoryStorage()
    return RedisStorage(settings.rate_limit_storage, settings.rate_limit_key_prefix)
