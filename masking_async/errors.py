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
    ├── APIError                 the server answered with an error status
    │   ├── InvalidRequestError  400, 405, 409, 422
    │   ├── AuthenticationError  401, 403
    │   ├── NotFoundError        404
    │   ├── RateLimitedError     429 (carries ``retry_after``)
    │   └── ServerError          5xx
    │
    │   the batch engine (masking_async.batch): a run refused or stopped before it could lose data
    ├── SourceError              the input file cannot be read as its format
    ├── ColumnError              the input's header cannot be matched to the API's fields
    ├── StrictModeError          ``strict`` and some rows are invalid: nothing was sent
    ├── SyncInputError           ``sync``'s desired file has invalid or repeated rows
    ├── BatchUsageError          a run set up so it would lose data (an output over its input)
    ├── OutputError              an output file cannot be written where it was asked
    ├── JournalError             the journal cannot be used, or a write to it failed
    │   └── JournalLocked        another run holds the journal
    │
    │   the other parts
    ├── CallbackFormatError      a callback payload that is not a session or recording event
    ├── TimetableError           a load's rate, stages or mix cannot be read (``PlanError``)
    ├── ThresholdError           a load's ``--threshold`` cannot be read
    ├── SnapshotError            an emulator state document cannot be loaded
    └── UsageError               the command line or a local file is unusable (the CLI's own)

A :class:`TransportError` (and a 5xx) leaves a create's outcome unknown: the server may have made
the session. A :class:`ConnectError` and a :class:`PoolTimeout` never do: nothing was sent.
The errors of text a person typed (:class:`ColumnError`, :class:`TimetableError`,
:class:`ThresholdError`, :class:`SnapshotError`) are also ``ValueError`` s, as they were before
they joined the tree, so a parser's ``except ValueError`` still takes them.

Not in the tree, on purpose: ``IllegalTransition`` (``batch/rowstate.py``) and
``TransitionError`` (``emulator/calls/call.py``) are ``RuntimeError`` s, a broken state machine,
a bug, never a user's doing; the emulator's ``StoreError`` family, ``Refused`` and
``PoolExhausted`` become the emulator's HTTP answers and never reach a client; ``CalledOff``
(``MaskingClient``) is a signal that a call was withdrawn, not a failure; the load scenario's
``PoolError`` and the command line's ``ControlRefused`` stay inside their modules.

No error ever carries credentials: messages are built from the method, the URL (which holds the
auth id, an account name, never the token) and the server's own message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from masking_async.rules import Violation

__all__ = [
    "APIError",
    "AuthenticationError",
    "BatchUsageError",
    "CallbackFormatError",
    "ColumnError",
    "ConfigurationError",
    "ConnectError",
    "InvalidRequestError",
    "JournalError",
    "JournalLocked",
    "LimiterUnavailableError",
    "MaskingError",
    "NotFoundError",
    "OutcomeUnknownError",
    "OutputError",
    "PoolTimeout",
    "RateLimitedError",
    "RequestTimeout",
    "RequestValidationError",
    "ResponseFormatError",
    "ServerError",
    "SnapshotError",
    "SourceError",
    "StrictModeError",
    "SyncInputError",
    "ThresholdError",
    "TimetableError",
    "TransportError",
    "UsageError",
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


# -- the batch engine's ------------------------------------------------------------------------


class SourceError(MaskingError):
    """The input file cannot be read as its format; ``line`` is where reading stopped.

    Raised while a batch reads its input (``run_batch``, ``masking-async create``), before the row
    it names is sent: a malformed CSV line, a JSON value that is not an object, a missing file.
    """

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}: line {line}: {message}" if line else f"{path}: {message}")


class ColumnError(MaskingError, ValueError):
    """The header cannot be matched as given; the message names each column and the fix.

    Raised when a batch's ``--map`` is malformed or names no parameter, or when the input's header
    holds a column that looks like a misspelt parameter, or lacks a required one; the whole file is
    judged from its header, before any row is sent.
    """


class StrictModeError(MaskingError):
    """``strict`` was asked and some rows are invalid: nothing was sent.

    Raised by ``run_batch(strict=True)`` (``--strict``) after the whole input was checked.
    """


class SyncInputError(MaskingError):
    """The desired file has invalid or repeated rows: nothing was listed or sent.

    Raised by ``sync`` before it lists the server's sessions.
    """


class BatchUsageError(MaskingError):
    """The run is set up so it would lose data (an output over the input, say): nothing sent.

    Raised by ``run_batch`` and the results writer before the first request.
    """


class OutputError(MaskingError):
    """An output file cannot be written where it was asked.

    Raised by the results writer when it opens (or first writes) an output: a directory that
    does not exist, a path that is a directory, no permission.
    """


class JournalError(MaskingError):
    """The journal cannot be used: not a journal, or a write to it failed.

    Raised when a run, ``--rerun``, ``report`` or ``resolve`` opens a file that is not a journal
    (or one of another input), and when appending to the journal fails mid-run (the run stops:
    an outcome that cannot be recorded must not be sent).
    """


class JournalLocked(JournalError):
    """Another run holds this journal.

    Raised when a run (or ``--rerun``) opens a journal whose lock another process holds.
    """


# -- the other parts' --------------------------------------------------------------------------


class CallbackFormatError(MaskingError):
    """A callback payload that is not a session or recording event (missing or bad fields).

    Raised by ``parse_event`` (and so by the receiver, which answers it with a 400).
    """


class TimetableError(MaskingError, ValueError):
    """A rate or stage list that cannot be understood; the message names the option.

    Raised while a load's options are read (``--rate``, ``--stages``, ``--mix``, ``--duration``;
    ``masking_async.load.plan.PlanError`` is this class), before anything is sent.
    """


class ThresholdError(MaskingError, ValueError):
    """Threshold text that cannot be read; the message quotes it and says the rule.

    Raised while a load's ``--threshold`` options are read, before anything is sent.
    """


class SnapshotError(MaskingError, ValueError):
    """A state document that cannot be loaded; the message names the place and the rule.

    Raised when an emulator loads ``--state`` or ``PUT /emulator/state``; nothing is changed.
    """


class UsageError(MaskingError):
    """The command line or a local file is not usable as given; the message names which.

    Raised by the command line only (exit status 2); the library raises the precise errors above.
    """
