"""The per-account rate limit: a sliding-window log on the emulator's clock.

Each account keeps the arrival times of its last ``requests`` accepted requests. A request is
accepted when fewer than ``requests`` were accepted in the ``per`` seconds before it, so accepted
requests never exceed the limit in *any* window of that length, the property client tests check.
Refused requests are not counted: a client that backs off as told gets through.
"""

from __future__ import annotations

import math
from collections import deque

from masking_async.emulator.clock import Clock
from masking_async.emulator.config import RateLimit

__all__ = ["RateLimiter"]


class RateLimiter:
    """Accepts or refuses each request of an account; ``None`` limit accepts everything."""

    def __init__(self, limit: RateLimit | None, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._arrivals: dict[str, deque[float]] = {}

    def reset(self, key: str | None = None) -> None:
        """Forget the arrivals of one account, or of all."""
        if key is None:
            self._arrivals.clear()
        else:
            self._arrivals.pop(key, None)

    def acquire(self, key: str) -> int | None:
        """Count a request and return ``None``, or refuse it: the whole seconds to wait (>= 1)."""
        if self.limit is None:
            return None
        now = self._clock.monotonic()
        arrivals = self._arrivals.setdefault(key, deque())
        horizon = now - self.limit.per
        while arrivals and arrivals[0] <= horizon:
            arrivals.popleft()
        if len(arrivals) < self.limit.requests:
            arrivals.append(now)
            return None
        return max(1, math.ceil(arrivals[0] + self.limit.per - now))
