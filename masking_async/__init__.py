"""Create, update and expire number-masking sessions at volume.

The public surface is what ``__all__`` names; everything else is private and may change.
"""

from importlib.metadata import version as _version

from masking_async.client import (
    DEFAULT_BASE_URL,
    AccountLimiter,
    CallTrace,
    ClientOptions,
    Event,
    Hook,
    Limiter,
    LimiterStats,
    MaskingClient,
    RateLimit,
    RequestAnswered,
    RequestFailed,
    RequestRetried,
    RequestSent,
    RequestThrottled,
    RetryPolicy,
    Timeouts,
)
from masking_async.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    InvalidRequestError,
    LimiterUnavailableError,
    MaskingError,
    NotFoundError,
    PoolTimeout,
    RateLimitedError,
    RequestTimeout,
    RequestValidationError,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from masking_async.models import (
    CreateSessionRequest,
    Interaction,
    LegacySession,
    PageMeta,
    Session,
    SessionPage,
    UpdateSessionRequest,
)
from masking_async.rules import Violation

#: The installed distribution's version: ``pyproject.toml`` is the one place it is written.
__version__ = _version("masking_async")

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "AccountLimiter",
    "AuthenticationError",
    "CallTrace",
    "ClientOptions",
    "ConfigurationError",
    "ConnectError",
    "CreateSessionRequest",
    "Event",
    "Hook",
    "Interaction",
    "InvalidRequestError",
    "LegacySession",
    "Limiter",
    "LimiterStats",
    "LimiterUnavailableError",
    "MaskingClient",
    "MaskingError",
    "NotFoundError",
    "PageMeta",
    "PoolTimeout",
    "RateLimit",
    "RateLimitedError",
    "RequestAnswered",
    "RequestFailed",
    "RequestRetried",
    "RequestSent",
    "RequestThrottled",
    "RequestTimeout",
    "RequestValidationError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "Session",
    "SessionPage",
    "Timeouts",
    "TransportError",
    "UpdateSessionRequest",
    "Violation",
    "__version__",
]
