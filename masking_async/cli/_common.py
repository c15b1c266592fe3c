"""Options every command that talks to the API shares: credentials, server, rate, concurrency."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio

from masking_async.cli._shared_limit import add_shared_limit_argument, connected, shared_limiter
from masking_async.client import ClientOptions, Limiter, MaskingClient, RateLimit
from masking_async.emulator.config import RateLimit as _LimitText
from masking_async.errors import MaskingError

T = TypeVar("T")


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--auth-id", help="account auth id (default: $PLIVO_AUTH_ID)")
    group.add_argument("--auth-token", help="account auth token (default: $PLIVO_AUTH_TOKEN)")
    group.add_argument(
        "--base-url", help="server root (default: $MASKING_ASYNC_BASE_URL or the real API)"
    )
    group.add_argument(
        "--rate", default="300/5s", help="client rate limit: 300/5s (the default), 10/s or off"
    )
    group.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    add_shared_limit_argument(group)


def rate_limit(text: str) -> RateLimit:
    """``300/5s``, ``10/s`` or ``off``, read exactly as the emulator's ``--rate-limit`` is."""
    try:
        parsed = _LimitText.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--rate: {exc}") from None
    return RateLimit.off() if parsed is None else RateLimit(parsed.requests, parsed.per)


def make_client(args: argparse.Namespace, *, limiter: Limiter | None = None) -> MaskingClient:
    options = ClientOptions(
        rate_limit=rate_limit(args.rate), max_connections=max(args.concurrency, 10)
    )
    return MaskingClient(
        args.auth_id, args.auth_token, base_url=args.base_url, options=options, limiter=limiter
    )


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[MaskingClient]:
    """``make_client(args)``, opened; with ``--shared-limit``, Redis is reached first."""
    async with (
        connected(shared_limiter(args, rate_limit(args.rate))) as limiter,
        make_client(args, limiter=limiter) as client,
    ):
        yield client


def run_until_signalled(work: Callable[[anyio.Event], Awaitable[T]]) -> T:
    """Run ``work(stop)`` where ``stop`` is set on SIGINT or SIGTERM, so it can end cleanly.

    Errors of ``work`` come out as themselves, not wrapped in an exception group, so the command
    line can report a bad file as one line.
    """

    async def main() -> T:
        stop = anyio.Event()
        outcome: list[T] = []
        failure: list[MaskingError] = []

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    stop.set()

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            try:
                outcome.append(await work(stop))
            except MaskingError as exc:
                failure.append(exc)
            finally:
                group.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return outcome[0]

    return anyio.run(main)
