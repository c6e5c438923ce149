"""The `jti` replay cache: a JWT is accepted once, then refused until it has expired.

In-process by default. With several workers (`serve --workers N`) each process would have its own
cache and a JWT could be replayed against another worker, so `VCDS_REDIS_URL` puts the cache in Redis
(`SET key NX EX ttl`, atomic across workers). If the store cannot answer, the JWT is refused.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class ReplayStoreUnavailable(Exception):
    """The replay store could not say whether a `jti` was seen; the caller must refuse the JWT."""


class ReplayCache(Protocol):
    def first_use(self, iss: str, jti: str, ttl_seconds: float) -> bool:
        """Record (iss, jti) for ttl_seconds; True when it had not been seen, False for a replay."""
        ...


def replay_key(iss: str, jti: str) -> str:
    # hashed: a fixed-size key whatever the client sends, and no client value in the store's keys
    return hashlib.sha256(f"{iss}\n{jti}".encode()).hexdigest()


class MemoryReplayCache:
    """A TTL set in this process. Bounded: when full of unexpired entries it refuses (fails closed)."""

    def __init__(self, max_entries: int = 200_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # (expiry, key): the next to expire first
        self._lock = threading.Lock()

    def first_use(self, iss: str, jti: str, ttl_seconds: float) -> bool:
        key = replay_key(iss, jti)
        now = self._clock()
        with self._lock:
            self._purge(now)
            if key in self._expiry:
                return False
            if len(self._expiry) >= self.max_entries:
                raise ReplayStoreUnavailable("replay cache full")
            expires = now + max(ttl_seconds, 1.0)
            self._expiry[key] = expires
            heapq.heappush(self._queue, (expires, key))
            return True

    def _purge(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            _, key = heapq.heappop(self._queue)
            self._expiry.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._expiry)


class RedisReplayCache:
    """The cache shared by every worker, in Redis."""

    def __init__(self, client: Any, prefix: str = "vcds:jti:") -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> RedisReplayCache:
        import redis  # noqa: PLC0415 (optional dependency: `pip install .[redis]` for VCDS_REDIS_URL)

        return cls(redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0))

    def first_use(self, iss: str, jti: str, ttl_seconds: float) -> bool:
        import redis  # noqa: PLC0415

        try:
            stored = self._client.set(
                self._prefix + replay_key(iss, jti), b"1", nx=True, ex=max(int(ttl_seconds) + 1, 1)
            )
        except redis.RedisError as error:
            raise ReplayStoreUnavailable(f"redis: {type(error).__name__}") from error
        return bool(stored)
