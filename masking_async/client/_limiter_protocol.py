"""The one limiter interface: what the client, batch engine, lister and load tester wait on.

A :class:`Limiter` decides *when* a request may go; the client decides *what* to send. The client
calls :meth:`Limiter.acquire` right before each send, once a pooled connection is ready (so the
time it returns is the time the request leaves), and :meth:`Limiter.throttled` on every 429. Any
object with these four methods fits: the in-process :class:`~masking_async.AccountLimiter`, or one
shared by several processes (through Redis, say). This module holds only the contract, so an
implementation elsewhere imports nothing else of the client.
"""

from __future__ import annotations

import enum
import math
from typing import Final, Protocol, runtime_checkable

import attrs

__all__ = ["FLOWING", "Limiter", "LimiterMode", "LimiterStats"]


class LimiterMode(str, enum.Enum):
    """Every limiter's mode, the one set of names for stats, progress lines and reports.

    ``steady``, ``paused`` (a 429's Retry-After holds every caller), ``recovering`` (climbing
    back after a pause) and ``closed`` are the in-process limiter's state machine (its table is in
    ``_limiter_state.py``); the shared limiter reports the same four from Redis' state, and
    ``redis down`` while its Redis cannot be reached (every caller waits). A ``str`` so that a
    mode compares and prints as its name.
    """

    STEADY = "steady"
    PAUSED = "paused"
    RECOVERING = "recovering"
    CLOSED = "closed"
    REDIS_DOWN = "redis down"

    def __str__(self) -> str:
        return self.value


#: The modes in which requests flow; a progress line shows any other, as it holds every request.
FLOWING: Final = frozenset({LimiterMode.STEADY, LimiterMode.RECOVERING, LimiterMode.CLOSED})


def _mode(value: LimiterMode | str | None) -> LimiterMode | None:
    """A mode from its name (``"steady"``), for limiters written before the Enum; ``""`` is none."""
    return LimiterMode(value) if value else None


@attrs.frozen
class LimiterStats:
    """A snapshot of a limiter, for progress lines, reports and ``client.rate_stats``.

    ``ceiling`` is the configured hard limit and ``rate`` the rate the limiter sends at now (the
    adaptive one: lower than the ceiling after 429s, back at it once the server has been quiet),
    both in requests per second; ``inf`` when there is no limit. ``paused_until`` is a
    ``time.monotonic()`` reading before which nothing is sent (0.0: never paused). ``throttled``
    counts the 429s reported, ``total_wait`` the seconds callers spent waiting in ``acquire``.
    ``acquired`` (requests let through) and ``mode`` (a :class:`LimiterMode`; its name, such as
    ``"steady"``, is accepted too) are optional for an implementation.
    """

    ceiling: float
    rate: float
    paused_until: float
    throttled: int
    total_wait: float
    acquired: int = 0
    mode: LimiterMode | None = attrs.field(default=None, converter=_mode)

    def __str__(self) -> str:
        """One line for a progress bar or a report.

        For example ``rate 94.9/s of 200/s (recovering), 1 x 429``.
        """
        if math.isinf(self.ceiling):
            text = "no rate limit"
        else:
            text = f"rate {self.rate:.1f}/s of {self.ceiling:.4g}/s"
        if self.mode:
            text += f" ({self.mode})"
        return f"{text}, {self.throttled} x 429"


@runtime_checkable
class Limiter(Protocol):
    """When requests may be sent: a ceiling, a pause on 429, and whatever adaptation it does."""

    async def acquire(self) -> None:
        """Return when one request may be sent now (it is counted as sent)."""
        ...

    async def throttled(self, retry_after: float | None) -> None:
        """A request was answered 429; ``retry_after`` is the server's hint in seconds, if any.

        Nothing may be let through until that time has passed, not even callers already waiting.
        """
        ...

    def stats(self) -> LimiterStats:
        """A snapshot (cheap: progress lines call it often)."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds; ``acquire`` is not called afterwards."""
        ...
