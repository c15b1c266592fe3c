"""The client's settings: small frozen values whose defaults are safe against the real API."""

from __future__ import annotations

import math
from typing import Any, Final

import attrs

__all__ = ["DEFAULT_BASE_URL", "ClientOptions", "RateLimit", "RetryPolicy", "Timeouts"]

DEFAULT_BASE_URL: Final = "https://api.plivo.com"
BASE_URL_ENV: Final = "MASKING_ASYNC_BASE_URL"


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a positive number, not {value!r}")


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, not {value!r}")


@attrs.frozen
class RateLimit:
    """At most ``requests`` per ``per`` seconds, over ANY window of ``per`` seconds.

    The documented account limit is 300 per 5 s (the default). The sender spaces requests so that
    ``requests`` of them span ``per + margin`` seconds: ``margin`` absorbs network jitter (a request
    that reaches the server later than the one ``requests`` after it), and costs
    ``margin / per`` of the rate (0.5 % by default). On a 429 the sending rate drops to
    ``decrease`` times what was just being sent; after each ``quiet`` seconds without one (default:
    two windows) it climbs back by ``increase`` of the ceiling. ``None`` requests means no limit
    (load tests, where the timetable is the rate); a 429 still pauses every caller.
    """

    requests: int | None = attrs.field(default=300, validator=_positive)
    per: float = attrs.field(default=5.0, validator=_positive)
    margin: float = attrs.field(default=0.025, validator=attrs.validators.ge(0.0))
    decrease: float = attrs.field(default=0.9, validator=_share)
    increase: float = attrs.field(default=0.02, validator=_share)
    quiet: float | None = attrs.field(default=None, validator=_positive)

    @classmethod
    def off(cls) -> RateLimit:
        return cls(requests=None)

    @property
    def ceiling(self) -> float:
        """The configured limit in requests per second (``inf`` when off)."""
        return math.inf if self.requests is None else self.requests / self.per

    @property
    def quiet_period(self) -> float:
        return 2 * self.per if self.quiet is None else self.quiet


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
    #: 429s one call may wait out. They are not failures: they spend neither ``attempts`` nor the
    #: budget (the limiter holds every caller until Retry-After), but a server that never stops
    #: answering 429 must not hold a call forever.
    max_throttled: int = 30
    #: Set False in tests to retry at once.
    wait: bool = True

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never send a call twice, not even after a 429, and never look up a lost create
        (load tests: every answer is data, as it comes)."""
        return cls(attempts=1, max_throttled=0)


@attrs.frozen
class Timeouts:
    """Seconds: ``total`` for a whole request, ``connect`` for the TCP/TLS handshake.

    ``pool`` bounds the wait for one of the ``max_connections`` slots, before the rate limiter and
    before anything is sent: running out of it raises :class:`~masking_async.PoolTimeout`, never an
    "outcome unknown" error. It is generous because callers queue for slots while the limiter
    paces the ones holding them (``None``: wait as long as it takes).
    """

    total: float = 30.0
    connect: float = 10.0
    pool: float | None = 120.0


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
