"""The client's settings: small frozen values whose defaults are safe against the real API."""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["DEFAULT_BASE_URL", "ClientOptions", "RateLimit", "RetryPolicy", "Timeouts"]

DEFAULT_BASE_URL: Final = "https://api.plivo.com"
BASE_URL_ENV: Final = "MASKING_ASYNC_BASE_URL"


@attrs.frozen
class RateLimit:
    """At most ``requests`` per ``per`` seconds, over ANY window of ``per`` seconds.

    The documented account limit is 300 per 5 s. A leaky bucket lets its capacity through at once
    and then its rate, so over one window it admits ``capacity + rate * per``; we keep that sum
    at ``requests`` by giving ``burst`` (a share of the limit) to the bucket, the rest to the rate.
    ``None`` requests means no limit (load tests, where the timetable is the rate).
    """

    requests: int | None = 300
    per: float = 5.0
    burst: float = 0.05

    @classmethod
    def off(cls) -> RateLimit:
        return cls(requests=None)

    @property
    def capacity(self) -> int:
        assert self.requests is not None
        return max(1, round(self.requests * self.burst))

    @property
    def sustained(self) -> float:
        """Requests per second once the bucket is drained."""
        assert self.requests is not None
        return (self.requests - self.capacity) / self.per


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by a retry budget.

    The budget lets retries be at most ``budget_ratio`` of recent requests (plus a floor), so a
    failing server sees a trickle of retries instead of a multiple of the load.
    """

    attempts: int = 5
    initial: float = 0.25
    maximum: float = 10.0
    multiplier: float = 2.0
    retry_after_cap: float = 60.0
    budget_ratio: float = 0.2
    budget_floor: int = 20
    #: Set False in tests to retry at once.
    wait: bool = True

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(attempts=1)


@attrs.frozen
class Timeouts:
    """Seconds: ``total`` for a whole request, ``connect`` for the TCP/TLS handshake."""

    total: float = 30.0
    connect: float = 10.0


@attrs.frozen(kw_only=True)
class ClientOptions:
    """Everything a :class:`MaskingClient` is tuned by."""

    rate_limit: RateLimit = attrs.field(factory=RateLimit)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    #: Pooled connections (keep-alive) shared by all calls of a client.
    max_connections: int = 100
    #: Seconds past the timeout before a lookup for an unanswered create is trusted: the time a
    #: server may still need to finish a request its client gave up on (see ``_adoption``).
    adopt_settle: float = 5.0
    #: Replace all but the last four digits of phone numbers in log lines.
    mask_numbers_in_logs: bool = True
