"""How a command fails: one line on stderr and a documented exit status, never a traceback.

A user error can surface as itself or wrapped in exception groups by the task groups it crossed;
:func:`explain` unwraps them and turns what it recognises into ``(status, line)``. Anything it
does not recognise is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys
from collections.abc import Iterator

from masking_async.batch.summary import EXIT_AUTH
from masking_async.errors import (
    APIError,
    AuthenticationError,
    ConnectError,
    MaskingError,
    TransportError,
    UsageError,
)
from masking_async.exit_status import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio brings along
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "explain",
    "os_reason",
    "writing",
]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def os_reason(exc: OSError) -> str:
    """The reason of an OSError in words, lower case: ``no space left on the device``."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    reason = exc.strerror or str(exc)
    return reason[0].lower() + reason[1:]


def _os_line(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return where + os_reason(exc)


def _one(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, ConnectError):
        return EXIT_UNREACHABLE, str(exc)  # the same sentence and status from every command
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH, str(exc)  # as a batch run that the server refuses stops: 3 everywhere
    if isinstance(exc, (TransportError, APIError)) and not isinstance(exc, AuthenticationError):
        return EXIT_FAILED, str(exc)  # the server or the network failed, not the user
    if isinstance(exc, MaskingError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, argparse.ArgumentTypeError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OSError):
        return EXIT_USAGE, _os_line(exc)
    return None


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
    """Name ``what`` in an OSError that names no file (a full disk is found at flush or close)."""
    try:
        yield
    except BaseException as exc:
        for leaf in _leaves(exc):
            if isinstance(leaf, OSError) and not leaf.filename:
                raise UsageError(f"cannot write {what}: {os_reason(leaf)}") from None
        raise


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit status and the one line for a user error, or None for a bug.

    In a group, a user error wins over the cancellations and follow-on failures beside it.
    """
    found = [one for leaf in _leaves(exc) if (one := _one(leaf)) is not None]
    return found[0] if found else None
