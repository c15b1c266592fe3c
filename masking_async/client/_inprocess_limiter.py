"""The in-process :class:`~masking_async.Limiter`: one account's budget, shared by every call.

Callers queue in a FIFO lock; the one holding it is the next to go, and it sleeps until
:class:`~masking_async.client._limiter_state.RateState` says it may. Because the decision is made
only by the head of the queue, right before it is let through, a 429's pause or a lower rate
applies at once to everyone still waiting, not only to callers who arrive later.

Why not ``aiolimiter``: its leaky bucket admits ``capacity + rate * per`` requests in a window,
so staying under an exact "N per window" limit means a rate below N / per (the 5 % burst share
cost 4.5 % of the rate); its rate is fixed when it is made, so it cannot adapt; and callers
already waiting inside it wake on their own timers, so a pause cannot hold them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from masking_async.client._limiter_protocol import LimiterStats
from masking_async.client._limiter_state import Mode, RateState
from masking_async.client._options import RateLimit

__all__ = ["AccountLimiter"]


class AccountLimiter:
    """A hard ceiling, a pause on 429 that holds everyone, and AIMD adaptation below the ceiling.

    Pass one to several clients (``limiter=``) to share an account's limit between them.
    ``clock`` and ``sleep`` are the time it runs on; tests pass a virtual one (with the emulator's
    clock behind it) so that a minute of sending takes no real time and no scheduling jitter.
    """

    def __init__(
        self,
        limit: RateLimit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.limit = limit if limit is not None else RateLimit()
        self._clock, self._sleep = clock, sleep
        self._state = RateState(self.limit, clock())
        # FIFO: the order callers asked in is the order they go in; a free turn is taken without
        # yielding (the send that follows yields anyway).
        self._turn = anyio.Lock(fast_acquire=True)
        self._total_wait = 0.0

    def __repr__(self) -> str:
        return f"<AccountLimiter {self._state.mode.value} rate={self._state.rate:.3g}/s>"

    async def acquire(self) -> None:
        asked = self._clock()
        async with self._turn:
            # A 429 while we sleep moves the pause later: look again after every wake-up.
            while (wait := self._state.next_send(now := self._clock()) - now) > 0:
                await self._sleep(wait)
            self._state.sent(now)
        self._total_wait += now - asked

    def try_acquire(self) -> bool:
        """What :meth:`acquire` does when no one is queued and a send is free now, without
        awaiting; ``False`` (nothing taken) when :meth:`acquire` would have to wait.

        The client tries it first, so that a request that waits for nothing arms nothing that
        would let it be called off (see ``MaskingClient._request``).
        """
        if self._turn.locked():
            return False
        now = self._clock()
        if self._state.next_send(now) > now:
            return False
        self._state.sent(now)
        return True

    async def throttled(self, retry_after: float | None) -> None:
        if self._state.mode is not Mode.CLOSED:  # a late answer after close holds no one
            self._state.throttled(self._clock(), retry_after)

    def stats(self) -> LimiterStats:
        return self._state.stats(self._clock(), self._total_wait)

    async def aclose(self) -> None:
        self._state.close()
