"""The async client: :class:`MaskingClient` and the options it is tuned by.

``RedisLimiter`` (a rate limit shared by processes) needs the ``redis`` extra, so it is imported
only when first named.
"""

from typing import TYPE_CHECKING, Any

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
from masking_async.client._limiter_protocol import Limiter, LimiterStats
from masking_async.client._options import (
    DEFAULT_BASE_URL,
    ClientOptions,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from masking_async.client._traffic import Traffic
from masking_async.client._transport import AiohttpTransport, Response, Transport

if TYPE_CHECKING:
    from masking_async.client._redis_limiter import RedisLimiter, SharedLimitOptions

__all__ = [
    "DEFAULT_BASE_URL",
    "AccountLimiter",
    "AiohttpTransport",
    "CallTrace",
    "CalledOff",
    "ClientOptions",
    "Ensured",
    "Event",
    "Hook",
    "Limiter",
    "LimiterStats",
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
]


def __getattr__(name: str) -> Any:
    if name in ("RedisLimiter", "SharedLimitOptions"):
        from masking_async.client import _redis_limiter

        return getattr(_redis_limiter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
