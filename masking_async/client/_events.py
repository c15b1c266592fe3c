"""Events a client reports to its hooks, so users can feed their own metrics.

A hook is any callable taking one event: ``MaskingClient(..., hooks=[record])``. Hooks run inline
on the request path, so they should be quick and must not raise (an exception reaches the caller).
Times are ``time.monotonic()`` readings; durations are seconds. URLs never carry credentials or
query strings (where list filters put phone numbers).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

__all__ = [
    "Event",
    "Hook",
    "RequestAnswered",
    "RequestFailed",
    "RequestRetried",
    "RequestSent",
    "RequestThrottled",
]


@attrs.frozen
class RequestSent:
    """A request left: ``waited`` is the time spent getting a connection slot and a rate token."""

    method: str
    url: str
    attempt: int
    waited: float
    at: float


@attrs.frozen
class RequestAnswered:
    """The server answered (any status, 429 included) ``elapsed`` seconds after the send."""

    method: str
    url: str
    attempt: int
    status: int
    elapsed: float
    at: float


@attrs.frozen
class RequestFailed:
    """No answer came: ``error`` names the TransportError (its outcome is unknown)."""

    method: str
    url: str
    attempt: int
    error: str
    elapsed: float
    at: float


@attrs.frozen
class RequestThrottled:
    """A 429: nothing is sent before ``paused_until``; ``rate`` is the limiter's new rate."""

    method: str
    url: str
    retry_after: float | None
    paused_until: float
    rate: float
    at: float


@attrs.frozen
class RequestRetried:
    """A failed attempt will be sent again after ``delay`` seconds (0 after a 429: see pause)."""

    method: str
    url: str
    attempt: int
    error: str
    delay: float
    at: float


Event = RequestSent | RequestAnswered | RequestFailed | RequestThrottled | RequestRetried
Hook = Callable[[Event], None]
