"""The per-account rate limit, on the emulator's clock, by one of three algorithms.

The real API's algorithm is not documented, and a client must survive each, so the emulator
offers the three common ones (``ServerRateLimit(algorithm=...)``, ``--rate-algorithm``):

``sliding``
    A sliding-window log: a request is accepted when fewer than ``requests`` were accepted in the
    ``per`` seconds before it, so accepted requests never exceed the limit in *any* window.
``fixed``
    Fixed windows aligned to multiples of ``per`` on the clock: up to ``requests`` in each. A
    client can get twice the limit through across a window boundary, and a refused one waits
    until the next window opens.
``token``
    A token bucket of ``requests`` tokens refilled at ``requests / per`` a second: a full burst
    at once, then a steady pace; over any ``t`` seconds at most ``requests * (1 + t / per)``.

In every case refused requests are not counted (a client that backs off as told gets through),
and the answer is how many whole seconds (at least 1) to wait, for ``Retry-After``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, Protocol, TypeVar

from masking_async.emulator.clock import Clock
from masking_async.emulator.config import ServerRateLimit

__all__ = ["FixedWindow", "RateLimiter", "SlidingWindow", "TokenBucket"]


S = TypeVar("S")
#: Absorbs float rounding, so that a request sent exactly Retry-After later is accepted.
_EPSILON = 1e-9


def _wait(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class _Algorithm(Protocol):
    def acquire(self, key: str, now: float) -> int | None: ...

    def reset(self, key: str | None) -> None: ...


class _PerAccount(Generic[S]):
    """What the algorithms share: the limit, and one piece of state per account."""

    def __init__(self, limit: ServerRateLimit) -> None:
        self.limit = limit
        self._accounts: dict[str, S] = {}

    def reset(self, key: str | None) -> None:
        """Forget one account's history, or every account's."""
        if key is None:
            self._accounts.clear()
        else:
            self._accounts.pop(key, None)


class SlidingWindow(_PerAccount[deque[float]]):
    """Each account keeps the arrival times of its last ``requests`` accepted requests."""

    def acquire(self, key: str, now: float) -> int | None:
        arrivals = self._accounts.setdefault(key, deque())
        while arrivals and arrivals[0] + self.limit.per <= now:  # as Retry-After adds it
            arrivals.popleft()
        if len(arrivals) < self.limit.requests:
            arrivals.append(now)
            return None
        return _wait(arrivals[0] + self.limit.per - now)


class FixedWindow(_PerAccount[tuple[int, int]]):
    """Each account keeps the index of its current window and how many it accepted in it."""

    def acquire(self, key: str, now: float) -> int | None:
        window = math.floor(now / self.limit.per + _EPSILON)
        current, count = self._accounts.get(key, (window, 0))
        if current != window:
            count = 0
        if count < self.limit.requests:
            self._accounts[key] = (window, count + 1)
            return None
        return _wait((window + 1) * self.limit.per - now)


class TokenBucket(_PerAccount[tuple[float, float]]):
    """Each account keeps its tokens and when they were last counted; a new account is full."""

    def acquire(self, key: str, now: float) -> int | None:
        rate = self.limit.requests / self.limit.per
        tokens, then = self._accounts.get(key, (float(self.limit.requests), now))
        tokens = min(float(self.limit.requests), tokens + (now - then) * rate)
        if tokens >= 1.0 - _EPSILON:
            self._accounts[key] = (tokens - 1.0, now)
            return None
        self._accounts[key] = (tokens, now)
        return _wait((1.0 - tokens) / rate)


_ALGORITHMS: dict[str, type[SlidingWindow] | type[FixedWindow] | type[TokenBucket]] = {
    "sliding": SlidingWindow,
    "fixed": FixedWindow,
    "token": TokenBucket,
}


class RateLimiter:
    """Accepts or refuses each request of an account; ``None`` limit accepts everything."""

    def __init__(self, limit: ServerRateLimit | None, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._algorithm: _Algorithm | None = (
            None if limit is None else _ALGORITHMS[limit.algorithm](limit)
        )

    def acquire(self, key: str) -> int | None:
        """Count a request and return ``None``, or refuse it: the whole seconds to wait (>= 1)."""
        if self._algorithm is None:
            return None
        return self._algorithm.acquire(key, self._clock.monotonic())

    def reset(self, key: str | None = None) -> None:
        """Forget the history of one account, or of all."""
        if self._algorithm is not None:
            self._algorithm.reset(key)
