"""A sliding-window rate limiter (the `limits` library's moving window), e.g. for the admin login form.

    limiter = RateLimiter(max_events=5, per_seconds=60)
    if not limiter.hit(f"login:{client_ip}"):
        return Response(status_code=429, headers={"Retry-After": str(limiter.retry_after(key))})

The counts live where `storage_uri` says: `memory://` (each worker counts its own, so with N workers
the effective limit is N times higher; keys are dropped once their window has passed), or the Redis
that several workers and replicas already share (`VCDS_REDIS_URL`), so that they count together.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


class RateLimiter:
    def __init__(self, max_events: int, per_seconds: int, *, storage_uri: str = "memory://") -> None:
        if max_events < 1 or per_seconds < 1:
            raise ValueError("max_events and per_seconds must be positive")
        self.max_events = max_events
        self.per_seconds = per_seconds
        self._item = RateLimitItemPerSecond(max_events, per_seconds)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def hit(self, key: str) -> bool:
        """Count one event for `key`; False (and not counted) when the limit is already reached."""
        return self._limiter.hit(self._item, key)

    def allowed(self, key: str) -> bool:
        """Whether one more event would be allowed, without counting it."""
        return self._limiter.test(self._item, key)

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may act again (0 when it may now)."""
        stats = self._limiter.get_window_stats(self._item, key)
        if stats.remaining > 0:
            return 0
        return max(1, math.ceil(stats.reset_time - time.time()))

    def reset(self, key: str) -> None:
        """Forget `key` (e.g. after a successful login)."""
        self._limiter.clear(self._item, key)
