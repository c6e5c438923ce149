"""A small in-process rate limiter (sliding window), e.g. for the admin login form.

    limiter = RateLimiter(max_events=5, per_seconds=60)
    if not limiter.hit(f"login:{client_ip}"):
        return Response(status_code=429, headers={"Retry-After": str(limiter.retry_after(key))})

Per process: with several workers each keeps its own count, so the effective limit is N times higher.
The number of keys tracked is bounded; the least recently used are dropped first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        max_events: int,
        per_seconds: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events < 1 or per_seconds <= 0 or max_keys < 1:
            raise ValueError("max_events, per_seconds and max_keys must be positive")
        self.max_events = max_events
        self.per_seconds = per_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        while events and events[0] <= now - self.per_seconds:
            events.popleft()
        return events

    def hit(self, key: str) -> bool:
        """Count one event for `key`; False (and not counted) when the limit is already reached."""
        with self._lock:
            now = self._clock()
            events = self._window(key, now)
            if len(events) >= self.max_events:
                return False
            events.append(now)
            return True

    def allowed(self, key: str) -> bool:
        """Whether one more event would be allowed, without counting it."""
        with self._lock:
            return len(self._window(key, self._clock())) < self.max_events

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may act again (0 when it may now)."""
        with self._lock:
            now = self._clock()
            events = self._window(key, now)
            if len(events) < self.max_events:
                return 0
            return max(1, math.ceil(events[0] + self.per_seconds - now))

    def reset(self, key: str) -> None:
        """Forget `key` (e.g. after a successful login)."""
        with self._lock:
            self._events.pop(key, None)
