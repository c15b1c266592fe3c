"""The async client: :class:`MaskingClient` and the options it is tuned by.

Besides the client, this is what the other parts (batch, load, the command line) may use of it:
the adoption rules a batch shares with the client (:class:`Lookup`, :func:`create_lane`,
:func:`same_value`), the option bounds and URL checks the command line applies before it builds a
client, and the retry decisions the batch engine makes on its own timer (:func:`maybe_applied`,
:func:`retry_delay`). No other part imports a module of the client whose name starts with ``_``.

``RedisLimiter`` (a rate limit shared by processes) needs the ``redis`` extra, so it is imported
only when first named.
"""

from typing import TYPE_CHECKING, Any

from masking_async.client._adoption import Lookup, create_lane, same_value
from masking_async.client._client import CalledOff, CallTrace, MaskingClient
from masking_async.client._ensure import Ensured
from masking_async.client._events import (
    Event,
    Hook,
    RequestAnswered,
    RequestFailed,
    RequestRetried,
    RequestSent,
    RequestThrottled,
)
from masking_async.client._inprocess_limiter import AccountLimiter
from masking_async.client._limiter_protocol import FLOWING, Limiter, LimiterMode, LimiterStats
from masking_async.client._options import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    MAX_CONNECTIONS,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    ClientOptions,
    RateLimit,
    RetryPolicy,
    Timeouts,
    check_base_url,
    shown_url,
    url_fault,
)
from masking_async.client._retry import maybe_applied, retry_delay
from masking_async.client._traffic import Traffic
from masking_async.client._transport import AiohttpTransport, Response, Transport

if TYPE_CHECKING:
    from masking_async.client._redis_limiter import RedisLimiter, SharedLimitOptions

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "FLOWING",
    "MAX_CONNECTIONS",
    "MAX_TIMEOUT",
    "MIN_TIMEOUT",
    "AccountLimiter",
    "AiohttpTransport",
    "CallTrace",
    "CalledOff",
    "ClientOptions",
    "Ensured",
    "Event",
    "Hook",
    "Limiter",
    "LimiterMode",
    "LimiterStats",
    "Lookup",
    "MaskingClient",
    "RateLimit",
    "RedisLimiter",
    "RequestAnswered",
    "RequestFailed",
    "RequestRetried",
    "RequestSent",
    "RequestThrottled",
    "Response",
    "RetryPolicy",
    "SharedLimitOptions",
    "Timeouts",
    "Traffic",
    "Transport",
    "check_base_url",
    "create_lane",
    "maybe_applied",
    "retry_delay",
    "same_value",
    "shown_url",
    "url_fault",
]


def __getattr__(name: str) -> Any:
    if name in ("RedisLimiter", "SharedLimitOptions"):
        from masking_async.client import _redis_limiter

        return getattr(_redis_limiter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
