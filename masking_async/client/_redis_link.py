"""The shared limiter's link to Redis: a clear error at start, outages waited out afterwards.

A limiter that cannot reach its store must never let requests through unlimited. At start an
unreachable Redis is a mistake in the setup: say so at once. Once the limit has been reached,
an outage is waited out: callers hold, one of them probes with a capped backoff (the one formula,
:class:`~masking_async.retrying.Backoff`, unjittered: one prober, nobody to spread) while the
rest queue behind it, and the time of the next probe is visible as a pause.

==========  ===========  ==========  ===================================================
state       event        next        effect
==========  ===========  ==========  ===================================================
NEW         call ok      UP
NEW         call fails   NEW         raise :class:`LimiterUnavailableError`
UP          call ok      UP
UP          call fails   DOWN        warn once; the caller waits and tries again
DOWN        call ok      UP          log how long Redis was away
DOWN        call fails   DOWN        wait (doubling, capped) and try again; past
                                     ``max_outage`` raise :class:`LimiterUnavailableError`
any open    close        CLOSED
CLOSED      call         CLOSED      refused: :class:`ConfigurationError`
==========  ===========  ==========  ===================================================
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio
import attrs
from redis import exceptions as redis_errors

from masking_async.errors import ConfigurationError, LimiterUnavailableError
from masking_async.retrying import Backoff

__all__ = ["OUTAGE_ERRORS", "Link", "LinkState", "Reconnect"]

log = logging.getLogger("masking_async.client.redis")
T = TypeVar("T")

#: What a call to Redis raises when Redis is away (down, restarting, loading, failing over).
OUTAGE_ERRORS: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,
)


class LinkState(enum.Enum):
    NEW = "new"
    UP = "up"
    DOWN = "down"
    CLOSED = "closed"


#: The table above as data: (state, call succeeded) -> next state; NEW on failure raises.
TRANSITIONS: Final = {
    (LinkState.NEW, True): LinkState.UP,
    (LinkState.UP, True): LinkState.UP,
    (LinkState.UP, False): LinkState.DOWN,
    (LinkState.DOWN, True): LinkState.UP,
    (LinkState.DOWN, False): LinkState.DOWN,
}


@attrs.frozen
class Reconnect:
    """How an outage is waited out: first wait, cap, and how long before giving up (None: never)."""

    initial: float = 0.05
    maximum: float = 1.0
    max_outage: float | None = None

    @property
    def backoff(self) -> Backoff:
        """The wait before each probe: ``initial``, doubling, at most ``maximum``."""
        return Backoff(self.initial, self.maximum, 2.0, jitter=False)


class Link:
    """Runs calls to Redis through the state machine above; ``where`` names Redis in messages."""

    def __init__(self, where: str, reconnect: Reconnect) -> None:
        self.where = where
        self.reconnect = reconnect
        self.state = LinkState.NEW
        #: Monotonic time Redis went away, and of the next probe, while DOWN.
        self.down_since: float | None = None
        self.next_probe: float = 0.0
        self._backoff = reconnect.backoff
        #: Probes that failed since Redis went away: the next waits ``backoff.ceiling(n + 1)``.
        self._probes = 0
        self._probe = anyio.Lock()

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` once Redis answers; never returns without an answer."""
        while True:
            if self.state is LinkState.CLOSED:
                raise ConfigurationError("the shared rate limiter is closed")
            async with contextlib.AsyncExitStack() as stack:
                if self.state is LinkState.DOWN:  # one caller probes at a time, the rest queue
                    await stack.enter_async_context(self._probe)
                    if self.state is LinkState.DOWN:
                        self._probes += 1
                        delay = self._backoff.ceiling(self._probes)
                        self.next_probe = time.monotonic() + delay
                        await anyio.sleep(delay)
                try:
                    result = await call()
                except OUTAGE_ERRORS as error:
                    self._failed(error)
                    continue
                self._succeeded()
                return result

    def close(self) -> None:
        self.state = LinkState.CLOSED

    def _succeeded(self) -> None:
        if self.state is LinkState.DOWN and self.down_since is not None:
            log.warning(
                "Redis at %s is back after %.1f s", self.where, time.monotonic() - self.down_since
            )
        self.state = TRANSITIONS[(self.state, True)]
        self.down_since = None
        self._probes = 0

    def _failed(self, error: BaseException) -> None:
        if self.state is LinkState.NEW:
            raise LimiterUnavailableError(
                f"shared rate limit: cannot reach Redis at {self.where}: {error}"
            ) from None
        if self.state is LinkState.UP:
            log.warning("Redis at %s is unreachable (%s): holding every request", self.where, error)
            self.down_since = time.monotonic()
        self.state = TRANSITIONS[(self.state, False)]
        limit = self.reconnect.max_outage
        if limit is not None and time.monotonic() - (self.down_since or 0.0) > limit:
            raise LimiterUnavailableError(
                f"shared rate limit: Redis at {self.where} unreachable for over {limit:g} s"
            ) from None
