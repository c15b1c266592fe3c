"""Options every command that talks to the API shares, their checks, and the signal handling.

Each option's value is checked by its ``type=`` function while the command line is parsed, so a
bad value is one line naming the option before anything starts.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio

from masking_async import spec
from masking_async.cli._shared_limit import add_shared_limit_argument, connected, shared_limiter
from masking_async.client import (
    BASE_URL_ENV,
    MAX_CONNECTIONS,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    ClientOptions,
    Limiter,
    MaskingClient,
    RateLimit,
    Timeouts,
    check_base_url,
)
from masking_async.durations import parse_seconds
from masking_async.errors import ConfigurationError
from masking_async.rates import parse_limit

T = TypeVar("T")

#: A host name: dot-separated labels of letters, digits and inner hyphens (RFC 1123).
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")

#: Seconds one request may take, retries apart (the client's own default).
DEFAULT_TIMEOUT = Timeouts().total


def typed(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Turn a parser's ValueError into argparse's usage error, keeping its message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def rate_limit(text: str, *, what: str = "rate limit") -> RateLimit:
    """``300/5s``, ``10/s``, ``1200/min`` or ``off``, in :mod:`masking_async.rates`' grammar
    (the emulator's ``--rate-limit`` and ``load``'s rates read the same)."""
    try:
        limit = parse_limit(text, what=what)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return RateLimit.off() if limit is None else RateLimit(limit.requests, limit.per)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def connections(text: str) -> int:
    """A whole number from 1 to :data:`MAX_CONNECTIONS` (requests in flight at once)."""
    value = positive_int(text)
    if value > MAX_CONNECTIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_CONNECTIONS:,}")
    return value


def positive_seconds(text: str) -> float:
    """``30``, ``2.5``, ``500ms`` or ``1m``: from 1 ms to a day (the client's timeout bounds)."""
    value = typed(parse_seconds)(text)
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be from {MIN_TIMEOUT * 1000:g} ms to {MAX_TIMEOUT / 3600:g} hours"
        )
    return value


def port(text: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return value


def bind_host(text: str) -> str:
    """An address or host name to listen on (``127.0.0.1``, ``::1``, ``localhost``)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(text))
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    if not _HOST_NAME.fullmatch(ascii_name):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or a host name")
    return text


def base_url(text: str) -> str:
    """A server root the client accepts: ``https://``, or ``http://`` to a loopback host."""
    try:
        return check_base_url(text, option="")
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_client_arguments(parser: argparse.ArgumentParser, *, concurrency: int = 16) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--auth-id", metavar="ID", help="account auth id (default: $PLIVO_AUTH_ID)")
    group.add_argument(
        "--auth-token", metavar="TOKEN", help="account auth token (default: $PLIVO_AUTH_TOKEN)"
    )
    group.add_argument(
        "--base-url",
        type=base_url,
        # Checked as the option is: an empty variable counts as unset (the real API).
        default=os.environ.get(BASE_URL_ENV) or None,
        metavar="URL",
        help="server root: https://, or http:// to a loopback host such as an emulator's"
        f" (default: ${BASE_URL_ENV} or the real API)",
    )
    group.add_argument(
        "--rate",
        type=rate_limit,
        default=spec.DOCUMENTED_RATE.text,
        metavar="N/WINDOW",
        help=f"client rate limit, e.g. {spec.DOCUMENTED_RATE.text} (the account's), 10/s,"
        " 1200/min, or off",
    )
    group.add_argument(
        "--concurrency",
        type=connections,
        default=concurrency,
        metavar="N",
        help=f"requests in flight at once, at most {MAX_CONNECTIONS:,}",
    )
    group.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="longest wait for one answer before it counts as lost and is retried (1 ms to 24 h)",
    )
    group.add_argument(
        "--settle",
        type=positive_seconds,
        default=ClientOptions().adopt_settle,
        metavar="SECONDS",
        help="after a create's answer is lost, how long past --timeout to wait before looking"
        " for the session it may have made (the server's time to finish; see docs/batch.md)",
    )
    add_shared_limit_argument(group)


def make_client(args: argparse.Namespace, *, limiter: Limiter | None = None) -> MaskingClient:
    options = ClientOptions(
        rate_limit=args.rate,
        max_connections=max(args.concurrency, 10),
        timeouts=Timeouts(total=args.timeout, connect=min(args.timeout, Timeouts().connect)),
        adopt_settle=args.settle,
    )
    return MaskingClient(
        args.auth_id, args.auth_token, base_url=args.base_url, options=options, limiter=limiter
    )


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[MaskingClient]:
    """``make_client(args)``, opened; with ``--shared-limit``, Redis is reached first."""
    async with (
        connected(shared_limiter(args, args.rate)) as limiter,
        make_client(args, limiter=limiter) as client,
    ):
        yield client


def run_until_signalled(work: Callable[[anyio.Event], Awaitable[T]]) -> T | None:
    """Run ``work(stop)``; the first SIGINT or SIGTERM sets ``stop``, the second cancels it.

    ``work`` ends cleanly when ``stop`` is set (rows in flight finish, files are flushed); a
    second Ctrl-C cancels it at once, so Ctrl-C always works. None means it was cancelled.
    """

    async def main() -> T | None:
        stop = anyio.Event()
        outcome: list[T] = []
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        if stop.is_set():
                            print(
                                "masking-async: stopped at once; requests in flight may or may"
                                " not have been applied (a --journal run reconciles them)",
                                file=sys.stderr,
                                flush=True,
                            )
                            group.cancel_scope.cancel()
                            return
                        print(
                            "masking-async: stopping; press Ctrl-C again to stop at once",
                            file=sys.stderr,
                            flush=True,
                        )
                        stop.set()

            group.start_soon(watch)
            try:
                outcome.append(await work(stop))
            finally:
                group.cancel_scope.cancel()
        return outcome[0] if outcome else None

    return anyio.run(main)
