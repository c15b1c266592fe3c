"""The client's settings: small frozen values whose defaults are safe against the real API."""

from __future__ import annotations

import ipaddress
import math
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from masking_async import spec
from masking_async._validators import positive
from masking_async.errors import ConfigurationError
from masking_async.rates import MAX_LIMIT_REQUESTS
from masking_async.retrying import Backoff

__all__ = [
    "DEFAULT_BASE_URL",
    "ClientOptions",
    "RateLimit",
    "RetryPolicy",
    "Timeouts",
    "check_base_url",
    "shown_url",
    "url_fault",
]

DEFAULT_BASE_URL: Final = "https://api.plivo.com"
BASE_URL_ENV: Final = "MASKING_ASYNC_BASE_URL"
#: Bounds of every timeout, in seconds: under a millisecond nothing can answer; over a day is a
#: typo, and an infinite one would overflow the event loop's clock.
MIN_TIMEOUT: Final = 0.001
MAX_TIMEOUT: Final = 86_400.0
#: The most pooled connections (and requests in flight) one client may open.
MAX_CONNECTIONS: Final = 10_000
#: The hosts plain ``http://`` may go to: the credentials never leave the machine unencrypted.
LOOPBACK_RULE: Final = "plain http:// is only for a loopback host (127.0.0.0/8, ::1, localhost)"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_fault(url: str, *, plain_http_anywhere: bool = False) -> str | None:
    """What is wrong with ``url`` as a server root, or None when nothing is.

    ``plain_http_anywhere`` lifts the loopback rule, for a root that carries no account
    credentials (an emulator's control plane).
    """
    if not url.isprintable() or any(char.isspace() for char in url):
        return "holds a space or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port  # out of range or not a number: ValueError
        host = parts.hostname
    except ValueError as exc:
        if "port" in str(exc).lower():
            return "the port must be a number from 1 to 65535"
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        if plain_http_anywhere:
            return "must start with http:// or https://"
        return "must start with https:// (or http:// to a loopback host)"
    if "@" in parts.netloc:
        return "must not hold a user name or password (the credentials are sent apart)"
    if not host:
        return "has no host"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    try:
        host.encode("idna")
    except UnicodeError:
        return f"host {host!r} is not a valid host name"
    if "?" in url or "#" in url:
        return "must not hold a query (?) or a fragment (#)"
    if parts.scheme == "http" and not plain_http_anywhere and not _is_loopback(host):
        return f"{LOOPBACK_RULE}; use https://"
    return None


def shown_url(url: str) -> str:
    """``url`` as a message may show it: not at all when it may hold a password."""
    return "(not shown: it holds '@')" if "@" in url else repr(url)


def check_base_url(url: str, *, option: str = "base_url") -> str:
    """``url`` without its trailing slash, or :class:`ConfigurationError` naming ``option``.

    A server root must be ``https://``, or ``http://`` to a loopback host (an emulator): the
    credentials go with every request, so they must never cross a network unencrypted. It has a
    host, a valid port, an optional path, and no user name, query or fragment. Checked before
    anything is sent. The message never shows a URL holding ``@`` (it may hold a password).
    """
    fault = url_fault(url)
    if fault is not None:
        raise ConfigurationError(f"{option} {shown_url(url)}: {fault}".lstrip())
    return url.rstrip("/")


def _limit_requests(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    positive(_, attribute, value)
    if value is not None and value > MAX_LIMIT_REQUESTS:
        raise ValueError(f"{attribute.name} must be at most {MAX_LIMIT_REQUESTS:,}, not {value!r}")


def _timeout(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise ValueError(
            f"{attribute.name} must be from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} seconds,"
            f" not {value!r}"
        )


def _connections(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_CONNECTIONS:
        raise ValueError(f"{attribute.name} must be from 1 to {MAX_CONNECTIONS:,}, not {value!r}")


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, not {value!r}")


@attrs.frozen
class RateLimit:
    """At most ``requests`` per ``per`` seconds, over ANY window of ``per`` seconds.

    The default is the documented account limit (:data:`masking_async.spec.DOCUMENTED_RATE`);
    ``requests`` is at most :data:`MAX_LIMIT_REQUESTS` (a million). The sender spaces requests so
    that ``requests`` of them span ``per + margin`` seconds: ``margin`` absorbs network jitter (a
    request that reaches the server later than the one ``requests`` after it), and costs
    ``margin / per`` of the rate (0.5 % by default). On a 429 the sending rate drops to
    ``decrease`` times what was just being sent; after each ``quiet`` seconds without one (default:
    two windows) it climbs back by ``increase`` of the ceiling. ``None`` requests means no limit
    (load tests, where the timetable is the rate); a 429 still pauses every caller.
    """

    requests: int | None = attrs.field(
        default=spec.DOCUMENTED_RATE.requests, validator=_limit_requests
    )
    per: float = attrs.field(default=spec.DOCUMENTED_RATE.per, validator=positive)
    margin: float = attrs.field(default=0.025, validator=attrs.validators.ge(0.0))
    decrease: float = attrs.field(default=0.9, validator=_share)
    increase: float = attrs.field(default=0.02, validator=_share)
    quiet: float | None = attrs.field(default=None, validator=positive)

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
    """Exponential backoff with full jitter, bounded by attempts, total time and a retry budget.

    The wait before retry ``n`` is drawn from ``[0, min(maximum, initial * multiplier**(n-1))]``
    (:class:`~masking_async.retrying.Backoff`, the one formula of every retry); after a 503 it is
    never under the server's ``Retry-After`` (capped at ``retry_after_cap``). The budget lets
    retries be at most ``budget_ratio`` of recent requests (plus a floor), so a failing server
    sees a trickle of retries instead of a multiple of the load.
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
    #: Seconds from a call's first send past which no retry may be waited for (None: no bound).
    timeout: float | None = None

    @property
    def backoff(self) -> Backoff:
        """The backoff formula with this policy's numbers."""
        return Backoff(self.initial, self.maximum, self.multiplier)

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never send a call twice, not even after a 429, and never look up a lost create
        (load tests: every answer is data, as it comes)."""
        return cls(attempts=1, max_throttled=0)


@attrs.frozen
class Timeouts:
    """Seconds: ``total`` for a whole request, ``connect`` for the TCP/TLS handshake.

    Each is from :data:`MIN_TIMEOUT` (1 ms) to :data:`MAX_TIMEOUT` (a day).

    ``pool`` bounds the wait for one of the ``max_connections`` slots, before the rate limiter and
    before anything is sent: running out of it raises :class:`~masking_async.PoolTimeout`, never an
    "outcome unknown" error. It is generous because callers queue for slots while the limiter
    paces the ones holding them (``None``: wait as long as it takes).
    """

    total: float = attrs.field(default=30.0, validator=_timeout)
    connect: float = attrs.field(default=10.0, validator=_timeout)
    pool: float | None = attrs.field(default=120.0, validator=_timeout)


@attrs.frozen(kw_only=True)
class ClientOptions:
    """Everything a :class:`MaskingClient` is tuned by."""

    rate_limit: RateLimit = attrs.field(factory=RateLimit)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    #: Pooled connections (keep-alive) shared by all calls of a client.
    max_connections: int = attrs.field(default=100, validator=_connections)
    #: Seconds past the timeout before a lookup for an unanswered create is trusted: the time a
    #: server may still need to finish a request its client gave up on (see ``_adoption``).
    adopt_settle: float = 5.0
    #: Replace all but the last four digits of phone numbers in log lines.
    mask_numbers_in_logs: bool = True
