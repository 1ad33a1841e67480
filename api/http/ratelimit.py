"""Writes per token: a token bucket of ``rate`` per minute (``serve --rate-limit``, default 60).

A bucket holds up to ``rate`` writes and refills continuously (``rate``/60 a second), so a
burst of ``rate`` writes passes and the next waits for its share. The buckets live in this
process: two ``serve`` processes each allow ``rate``. Bounded: idle full buckets are forgotten.
"""

from __future__ import annotations

import math
import threading
import time

MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}   # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> int | None:
        """Spend one write of ``key``: None when allowed, else the seconds to wait (Retry-After)."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1, math.ceil((1.0 - tokens) / rate))
            if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
                self._forget_full(now, rate)
            self._buckets[key] = (tokens - 1.0, now)
            return None

    def _forget_full(self, now: float, rate: float) -> None:
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * rate >= self.per_minute:
                del self._buckets[key]
