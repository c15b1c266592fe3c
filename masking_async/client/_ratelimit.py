"""One account's request budget, shared by every call of a client (or several clients)."""

from __future__ import annotations

import time

import anyio
from aiolimiter import AsyncLimiter

from masking_async.client._options import RateLimit

__all__ = ["AccountLimiter"]


class AccountLimiter:
    """A leaky bucket sized so that no window of ``per`` seconds sees more than the limit.

    A 429 pauses it for everyone until the server's ``Retry-After`` has passed: one throttled call
    slows the whole client down instead of each call finding out on its own.
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._bucket = (
            None
            if limit.requests is None
            else AsyncLimiter(limit.capacity, limit.capacity / limit.sustained)
        )
        self._paused_until = 0.0

    async def acquire(self) -> None:
        # A 429 during the sleep may move the end of the pause: look again after waking.
        while (wait := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110
            await anyio.sleep(wait)
        if self._bucket is not None:
            await self._bucket.acquire()

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
