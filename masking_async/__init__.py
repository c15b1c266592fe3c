"""Create, update and expire number-masking sessions at volume.

The public surface is what ``__all__`` names; everything else is private and may change.
"""

from masking_async.client import (
    DEFAULT_BASE_URL,
    AccountLimiter,
    CallTrace,
    ClientOptions,
    Limiter,
    LimiterStats,
    MaskingClient,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from masking_async.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    LimiterUnavailableError,
    MaskingError,
    NotFoundError,
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
    PageMeta,
    Session,
    SessionPage,
    UpdateSessionRequest,
)
from masking_async.rules import Violation

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "AccountLimiter",
    "AuthenticationError",
    "CallTrace",
    "ClientOptions",
    "ConfigurationError",
    "CreateSessionRequest",
    "Interaction",
    "InvalidRequestError",
    "Limiter",
    "LimiterStats",
    "LimiterUnavailableError",
    "MaskingClient",
    "MaskingError",
    "NotFoundError",
    "PageMeta",
    "RateLimit",
    "RateLimitedError",
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
