"""The async client: :class:`MaskingClient` and the options it is tuned by."""

from masking_async.client._client import CallTrace, MaskingClient
from masking_async.client._events import (
    Event,
    Hook,
    RequestAnswered,
    RequestFailed,
    RequestRetried,
    RequestSent,
    RequestThrottled,
)
from masking_async.client._limiter import Limiter, LimiterStats
from masking_async.client._options import (
    DEFAULT_BASE_URL,
    ClientOptions,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from masking_async.client._ratelimit import AccountLimiter
from masking_async.client._transport import AiohttpTransport, Response, Transport

__all__ = [
    "DEFAULT_BASE_URL",
    "AccountLimiter",
    "AiohttpTransport",
    "CallTrace",
    "ClientOptions",
    "Event",
    "Hook",
    "Limiter",
    "LimiterStats",
    "MaskingClient",
    "RateLimit",
    "RequestAnswered",
    "RequestFailed",
    "RequestRetried",
    "RequestSent",
    "RequestThrottled",
    "Response",
    "RetryPolicy",
    "Timeouts",
    "Transport",
]
