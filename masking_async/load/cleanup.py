"""After a run: expire every session it made, retrying until each is gone or the time is up.

A throttled expire is retried after the server's ``Retry-After`` (1 s when it names none), a
5xx or lost connection after a short jittered backoff (never under a 503's ``Retry-After``), both
through :func:`~masking_async.retrying.retry_context`; a 404 means the session is already gone.
The client used here has no retries of its own: this loop decides, so no retry budget can give
up on a session quietly. Creates whose outcome the run never learned are looked up first (by
their parties) and expired too when found. What is still active when the time is up is named.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import anyio
import anyio.abc
import attrs

from masking_async.client import MaskingClient, RetryPolicy
from masking_async.errors import APIError, NotFoundError, RateLimitedError, ServerError
from masking_async.errors import TransportError as _Transport
from masking_async.load.scenario import SessionPool, State
from masking_async.retrying import Backoff, retry_context

__all__ = ["CleanupProgress", "CleanupResult", "clean_up", "each", "persist"]

T = TypeVar("T")

_CONCURRENCY = 16
#: After a 5xx or a lost connection: up to 0.2 s, doubling, at most 2 s (full jitter).
_BACKOFF: Final = Backoff(0.2, 2.0)
#: After a 429 that names no Retry-After.
_THROTTLED_WAIT: Final = 1.0
#: The longest Retry-After honoured: the client's policy's cap.
_RETRY_AFTER_CAP: Final = RetryPolicy().retry_after_cap


@attrs.frozen
class CleanupProgress:
    """A snapshot for the live line."""

    elapsed: float
    sessions: int
    expired: int
    throttled: int


@attrs.frozen
class CleanupResult:
    """What the cleanup did; ``left`` names the sessions still active when it stopped."""

    sessions: int
    expired: int
    left: tuple[str, ...]
    throttled: int
    lost_creates: int
    found: int
    elapsed: float


@attrs.define
class _Tally:
    sessions: int = 0
    expired: int = 0
    throttled: int = 0
    found: int = 0


async def persist(
    call: Callable[[], Awaitable[T]],
    *,
    rng: random.Random,
    attempts: int | None = None,
    on_throttled: Callable[[], None] | None = None,
) -> T:
    """Await ``call()`` until it succeeds: a 429 waits out its Retry-After, a 5xx or a lost
    connection backs off (jittered, never under a 503's Retry-After); any other error, or the
    last of ``attempts``, is raised. Every Retry-After is capped at :data:`_RETRY_AFTER_CAP`."""
    async for attempt in retry_context(_BACKOFF, attempts=attempts, rng=rng):
        try:
            return await call()
        except RateLimitedError as exc:
            after = _THROTTLED_WAIT if exc.retry_after is None else exc.retry_after
            if not attempt.retry(exc, wait=min(after, _RETRY_AFTER_CAP)):
                raise
            if on_throttled is not None:
                on_throttled()
        except (ServerError, _Transport) as exc:
            asked = exc.retry_after if isinstance(exc, ServerError) else None
            if not attempt.retry(exc, floor=min(asked or 0.0, _RETRY_AFTER_CAP)):
                raise
    raise AssertionError("a retry loop ends by a return or a raise")


async def clean_up(
    pool: SessionPool,
    client: MaskingClient,
    *,
    created_since: datetime,
    within: float,
    on_progress: Callable[[CleanupProgress], None] | None = None,
    progress_every: float = 1.0,
) -> CleanupResult:
    """Expire every unclean session of ``pool`` through ``client`` in ``within`` seconds."""
    started = time.perf_counter()
    tally = _Tally()
    rng = random.Random()
    uuids = pool.close()
    tally.sessions = len(uuids)

    def throttled() -> None:
        tally.throttled += 1

    async def look_up(first: str, second: str) -> None:
        filters = {
            "first_party": first,
            "second_party": second,
            "status": "active",
            "created_time__gte": created_since,
        }

        async def listed() -> list[Any]:
            return [session async for session in client.iter_sessions(filters)]

        with contextlib.suppress(APIError):  # a look-up refused for good finds nothing
            for found in await persist(listed, rng=rng, on_throttled=throttled):
                if pool.state(found.session_uuid) is None:
                    pool.move(found.session_uuid, State.ACTIVE)
                    tally.found += 1
                    tally.sessions += 1
                    await expire(found.session_uuid)

    async def expire(uuid: str) -> None:
        try:
            await persist(lambda: client.expire_session(uuid), rng=rng, on_throttled=throttled)
        except NotFoundError:
            pass  # already gone: expired by the run, or by time
        except APIError:
            return  # refused for good (401, 403...): named among those left
        pool.move(uuid, State.EXPIRED)
        tally.expired += 1

    async def report() -> None:
        assert on_progress is not None
        while True:
            await anyio.sleep(progress_every)
            on_progress(
                CleanupProgress(
                    time.perf_counter() - started, tally.sessions, tally.expired, tally.throttled
                )
            )

    with anyio.move_on_after(within):
        async with anyio.create_task_group() as outer:
            if on_progress is not None:
                outer.start_soon(report)
            await each(look_up, pool.lost)
            await each(expire, [(uuid,) for uuid in uuids])
            outer.cancel_scope.cancel()
    return CleanupResult(
        sessions=tally.sessions,
        expired=tally.expired,
        left=tuple(pool.unclean()),
        throttled=tally.throttled,
        lost_creates=len(pool.lost),
        found=tally.found,
        elapsed=time.perf_counter() - started,
    )


async def each(job: Callable[..., Awaitable[None]], items: Sequence[tuple[Any, ...]]) -> None:
    """``job(*item)`` for every item, at most ``_CONCURRENCY`` at once."""
    limit = anyio.CapacityLimiter(_CONCURRENCY)

    async def one(item: tuple[Any, ...]) -> None:
        async with limit:
            await job(*item)

    async with anyio.create_task_group() as group:
        for item in items:
            group.start_soon(one, item)
