"""The errors ``masking_async`` raises: catch :class:`MaskingError`, or one precise leaf.

::

    MaskingError
    ├── ConfigurationError       missing credentials, or a client used outside ``async with``
    │   └── LimiterUnavailableError  the shared rate limit's Redis cannot be reached
    ├── RequestValidationError   a request broke the spec's rules; nothing was sent
    ├── ResponseFormatError      the server answered something we cannot read
    ├── OutcomeUnknownError      a create may have been applied and no lookup could tell
    ├── PoolTimeout              no pooled connection free in time; nothing was sent
    ├── TransportError           no answer: the connection was reset or closed, or never opened
    │   ├── ConnectError         no connection could be opened: the request never left
    │   └── RequestTimeout       no answer in time
    └── APIError                 the server answered with an error status
        ├── InvalidRequestError  400, 405, 409, 422
        ├── AuthenticationError  401, 403
        ├── NotFoundError        404
        ├── RateLimitedError     429 (carries ``retry_after``)
        └── ServerError          5xx

A :class:`TransportError` (and a 5xx) leaves a create's outcome unknown: the server may have made
the session. A :class:`ConnectError` and a :class:`PoolTimeout` never do: nothing was sent.

No error ever carries credentials: messages are built from the method, the URL (which holds the
auth id, an account name, never the token) and the server's own message.
"""

from __future__ import annotations

from collections.abc import Sequence

from masking_async.rules import Violation

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectError",
    "InvalidRequestError",
    "LimiterUnavailableError",
    "MaskingError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PoolTimeout",
    "RateLimitedError",
    "RequestTimeout",
    "RequestValidationError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "error_for_status",
]


class MaskingError(Exception):
    """Base of every error this library raises on purpose."""


class ConfigurationError(MaskingError):
    """The client cannot work as set up: no credentials, or used when not open."""


class LimiterUnavailableError(ConfigurationError):
    """The Redis holding a shared rate limit cannot be reached at start (or for ``max_outage``)."""


class RequestValidationError(MaskingError, ValueError):
    """A request broke one or more of the spec's rules and was not sent."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(str(v) for v in self.violations))


class ResponseFormatError(MaskingError):
    """The response body was not JSON or not the shape the spec describes."""

    def __init__(self, message: str, *, method: str = "", url: str = "", status: int = 0) -> None:
        self.method, self.url, self.status = method, url, status
        super().__init__(f"{message} ({method} {url} -> {status})" if method else message)


class OutcomeUnknownError(MaskingError):
    """A create may have made a session, and no conclusive lookup could say which.

    ``session_uuid`` is set when the server named the session in an answer we could not read;
    ``candidates`` lists the sessions that matched when more than one did (ambiguous).
    """

    def __init__(
        self,
        message: str,
        *,
        session_uuid: str | None = None,
        candidates: tuple[str, ...] = (),
    ) -> None:
        self.session_uuid, self.candidates = session_uuid, candidates
        super().__init__(message)


class PoolTimeout(MaskingError):
    """No connection of the pool was free within ``Timeouts.pool``: the request was never sent.

    Not a :class:`TransportError`: nothing reached the server, so a create is not "maybe made",
    needs no lookup, and may be sent again later.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        self.method, self.url = method, url
        super().__init__(f"{message} ({method} {url})" if method else message)


class TransportError(MaskingError):
    """The request got no answer: whether the server acted on it is unknown."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        self.method, self.url = method, url
        super().__init__(f"{message} ({method} {url})" if method else message)


class ConnectError(TransportError):
    """No connection could be opened (refused, no such host, TLS handshake refused, no connection
    within ``Timeouts.connect``): the request never left, so the server cannot have applied it.

    The message is one sentence naming the server root and the cause, e.g. ``cannot connect to
    http://127.0.0.1:9: connection refused``; ``origin`` and ``reason`` hold its two parts.
    """

    def __init__(self, reason: str, *, origin: str, method: str = "", url: str = "") -> None:
        self.method, self.url, self.origin, self.reason = method, url, origin, reason
        MaskingError.__init__(self, f"cannot connect to {origin}: {reason}")


class RequestTimeout(TransportError):
    """No answer within the configured timeout."""


class APIError(MaskingError):
    """The server answered with an error status and, usually, ``{"api_id", "error"}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        api_id: str | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.message, self.status, self.api_id = message, status, api_id
        self.method, self.url = method, url
        super().__init__(f"{status} {message} ({method} {url}, api_id={api_id})")


class InvalidRequestError(APIError):
    """400, 405, 409 or 422: the server refused the request as it stands."""


class AuthenticationError(APIError):
    """401 or 403: wrong credentials, or not allowed."""


class NotFoundError(APIError):
    """404: no such session for this account."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ServerError(APIError):
    """5xx: the server failed; for a create, the session may or may not exist.

    ``retry_after``: the seconds a 503's ``Retry-After`` asked for, if any (the least wait
    before a retry).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def error_for_status(status: int) -> type[APIError]:
    """Pick the error class for an HTTP status (the one place that mapping lives)."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)
