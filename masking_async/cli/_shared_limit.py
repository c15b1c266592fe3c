"""``--shared-limit redis://host:port/db``: one account's rate limit shared by every process.

Every command that sends (``create``, ``update``, ``expire``, ``run``, ``list``, ``load``) takes
it. Processes given the same Redis and account share one window, one pause and one learned rate;
Redis is reached before anything is read or sent, so a wrong URL is one line and exit status 2.
The ``redis`` package is imported only when the option is used.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from masking_async.client import Limiter, RateLimit
from masking_async.errors import ConfigurationError

if TYPE_CHECKING:
    from masking_async.client import RedisLimiter

__all__ = ["add_shared_limit_argument", "connected", "shared_limiter"]

_SCHEMES = ("redis", "rediss", "unix")


def redis_url(text: str) -> str:
    if urlsplit(text).scheme not in _SCHEMES:
        raise argparse.ArgumentTypeError(
            f"{text.split('@')[-1]!r} is not a Redis URL such as redis://127.0.0.1:6379/0"
        )
    return text


def add_shared_limit_argument(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--shared-limit",
        type=redis_url,
        metavar="REDIS_URL",
        help="share the account's rate limit with every process using this Redis"
        " (e.g. redis://127.0.0.1:6379/0; needs the redis extra); see docs/scaling.md",
    )


def shared_limiter(
    args: argparse.Namespace, limit: RateLimit, *, account: str | None = None
) -> RedisLimiter | None:
    """The limiter ``--shared-limit`` asks for (keyed by the account), or None without it."""
    url = getattr(args, "shared_limit", None)
    if not url:
        return None
    if limit.requests is None:
        raise ConfigurationError("--shared-limit needs a rate limit, not 'off'")
    account = account or args.auth_id or os.environ.get("PLIVO_AUTH_ID")
    if not account:
        raise ConfigurationError(
            "--shared-limit is kept per account: give --auth-id or set PLIVO_AUTH_ID"
        )
    try:
        from masking_async.client import RedisLimiter
    except ImportError:
        raise ConfigurationError(
            "--shared-limit needs the redis package: pip install 'masking_async[redis]'"
        ) from None
    return RedisLimiter.from_url(url, account=account, limit=limit)


@contextlib.asynccontextmanager
async def connected(limiter: RedisLimiter | None) -> AsyncIterator[Limiter | None]:
    """Reach Redis first (a clear error if it can't), close the limiter at the end."""
    if limiter is None:
        yield None
        return
    async with limiter:
        yield limiter
