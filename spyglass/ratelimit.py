"""Rate limits for every path, on the maintained `limits` library.

One limiter per process, keyed by what is limited (`login-account`, `direct-start`, …) and
whom (an email, an address, a token id). With `REDIS_URL` the counters live in Redis, so N
workers allow the configured rate in all, not N times it; otherwise in this process's memory.
Rates come from the settings (`SPYGLASS_LIMIT_*`, in the `limits` notation: "5/5minutes").
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from spyglass.config import get_settings
from spyglass.errors import DomainError


class RateLimited(DomainError):
    """429 `RATE_LIMITED`; `retry_after` seconds go out as the `Retry-After` header."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__("RATE_LIMITED", message, 429, {"retry_after": retry_after})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}  # also on sockets' 429 answers


class Limiter:
    def __init__(self, storage: Storage, prefix: str) -> None:
        self.storage = storage
        self.prefix = prefix
        self.strategy = MovingWindowRateLimiter(storage)

    @staticmethod
    @lru_cache(maxsize=64)
    def _items(rate: str) -> tuple[RateLimitItem, ...]:
        return tuple(parse_many(rate)) if rate.strip() else ()

    async def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        stats = await self.strategy.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, rate: str, *keys: str, message: str = "Too many requests") -> None:
        """Count one use of `keys`; raise RateLimited once `rate` is used up."""
        for item in self._items(rate):
            if not await self.strategy.hit(item, self.prefix, *keys):
                wait = await self._retry_after(item, self.prefix, *keys)
                raise RateLimited(f"{message}; try again in {wait} s", wait)

    async def check(self, rate: str, *keys: str, message: str = "Too many requests") -> None:
        """Raise RateLimited if `rate` is used up for `keys`, without counting a use."""
        for item in self._items(rate):
            if not await self.strategy.test(item, self.prefix, *keys):
                wait = await self._retry_after(item, self.prefix, *keys)
                raise RateLimited(f"{message}; try again in {wait} s", wait)

    async def clear(self, rate: str, *keys: str) -> None:
        for item in self._items(rate):
            await self.strategy.clear(item, self.prefix, *keys)


_limiter: Limiter | None = None


def get_limiter() -> Limiter:
    """The process's limiter: Redis-backed when `REDIS_URL` is set, else in memory."""
    global _limiter
    if _limiter is None:
        settings = get_settings()
        storage: Storage
        if settings.redis_url:
            url = settings.redis_url.replace("redis://", "async+redis://", 1)
            found = storage_from_string(url, implementation="redispy")
            if not isinstance(found, Storage):  # only `async+` schemes give asyncio storages
                raise TypeError("REDIS_URL's scheme has no asyncio storage for rate limits")
            storage = found
        else:
            storage = MemoryStorage()
        _limiter = Limiter(storage, f"{settings.redis_prefix}-rl")
    return _limiter
