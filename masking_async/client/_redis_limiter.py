"""``RedisLimiter``: one account's rate limit shared by every process and host through Redis.

Each acquisition is one call of one atomic Lua script (see ``_redis_script``): an exact sliding
window on Redis' own clock, a pause that any process's 429 sets for all, and an adaptive (AIMD)
rate that the whole fleet learns together. A caller that must wait is given its slot, sleeps, and
claims it with a second call of the same script, so a 429 that arrives while it sleeps still holds
it, and a caller that wakes too late lines up again instead of sending late. Redis away during a
run: callers wait for it (see ``_redis_link``); nothing is sent without the script's consent.

::

    limiter = RedisLimiter.from_url("redis://127.0.0.1:6379/0", account=auth_id,
                                    limit=RateLimit(300, 5.0))
    async with limiter, MaskingClient(limiter=limiter) as client:
        ...
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import anyio
import attrs
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from masking_async.client._limiter_protocol import LimiterMode, LimiterStats
from masking_async.client._limiter_state import (
    CATCH_UP,
    DEFAULT_PAUSE,
    FLOOR_SHARE,
    HOLD_PERIODS,
    HOLD_SHARE,
)
from masking_async.client._options import RateLimit
from masking_async.client._redis_link import Link, LinkState, Reconnect
from masking_async.client._redis_script import PARAMETERS, SCRIPT
from masking_async.errors import ConfigurationError

__all__ = ["RedisLimiter", "SharedLimitOptions", "redacted_url"]

T = TypeVar("T")

_MICRO: Final = 1_000_000
#: A per-pair lock (``run_locked``) lives this long unless its holder renews it, which it does
#: every third of it: a holder killed mid-way delays the pair's next caller at most this long.
PAIR_LOCK_TTL: Final = 10.0
#: How often a caller waiting for a held per-pair lock tries again.
PAIR_LOCK_POLL: Final = 0.02
#: Release or renew a lock only if it is still ours (its value is our token).
_IF_OURS: Final = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then return redis.call('del', KEYS[1]) end
return redis.call('pexpire', KEYS[1], ARGV[2])
"""
#: A slot may be claimed up to half the margin after its time, and never less late than this.
MIN_LATE: Final = 0.005


@attrs.frozen(kw_only=True)
class SharedLimitOptions:
    """Where the shared state lives and how Redis is reached; the limit itself is a RateLimit.

    The ceiling and AIMD numbers are the ``RateLimit``'s, read exactly as the in-process limiter
    reads them, so one process and a fleet behave alike. Only the margin has a floor: the delays
    from a slot to the server spread wider over a fleet than in one process (a process that is
    still starting sends its first requests late), and the margin must cover that spread.
    Measured on a loaded 2-core machine: up to 45 ms in steady state, 130 ms while processes
    boot; 0.1 s costs 2 % of 300 per 5 s. Raise it if the server still answers 429.
    """

    min_margin: float = 0.1

    #: Redis keys are ``{prefix}:{{account}}:log`` and ``...:state`` (one cluster slot).
    prefix: str = "masking_async"
    max_connections: int = 16
    #: Seconds to connect to Redis and to wait for each answer.
    timeout: float = 2.0
    reconnect: Reconnect = attrs.field(factory=Reconnect)


@attrs.frozen
class _Reply:
    delay: float
    slot: int
    epoch: int
    rate: float
    pause: float

    @classmethod
    def parse(cls, raw: list[Any]) -> _Reply:
        delay, slot, epoch, rate, pause = raw
        return cls(-1.0 if delay < 0 else delay / _MICRO, slot, epoch, float(rate), pause / _MICRO)


def limit_arguments(limit: RateLimit) -> list[str | int | float]:
    """The limit's numbers in the script's order (``PARAMETERS``), times in microseconds."""
    assert limit.requests is not None
    values = {
        "requests": limit.requests,
        "per_us": round(limit.per * _MICRO),
        "margin_us": round(limit.margin * _MICRO),
        "decrease": limit.decrease,
        "increase": limit.increase,
        "quiet_us": round(limit.quiet_period * _MICRO),
        "floor_share": FLOOR_SHARE,
        "hold_share": HOLD_SHARE,
        "hold_periods": HOLD_PERIODS,
        "catch_up_us": round(CATCH_UP * limit.per * _MICRO),
        "late_us": round(max(limit.margin / 2, MIN_LATE) * _MICRO),
    }
    return [values[name] for name in PARAMETERS]


def redacted_url(url: str) -> str:
    """The Redis URL without its password, for messages and reprs."""
    parts = urlsplit(url)
    where = parts.hostname or parts.path or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{where}{port}{parts.path if parts.hostname else ''}"


class RedisLimiter:
    """A :class:`Limiter` whose window, pause and adaptive rate live in Redis, keyed by account.

    ``from_url`` makes its own client (closed with the limiter). Many accounts in one process can
    share one ``redis.asyncio.Redis`` instead: ``RedisLimiter(client, account=..., limit=...)``
    for each, closing the client yourself (``where`` names it in messages).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        account: str,
        limit: RateLimit,
        options: SharedLimitOptions | None = None,
        where: str = "redis",
        owns_client: bool = False,
    ) -> None:
        if limit.requests is None:
            raise ConfigurationError("a shared rate limit needs a limit (not 'off')")
        requests = limit.requests
        options = options or SharedLimitOptions()
        limit = attrs.evolve(limit, margin=max(limit.margin, options.min_margin))
        self.account, self.limit, self.options = account, limit, options
        self._redis = redis
        # A client passed in may serve other accounts' limiters: only one made here is closed.
        self._owns_client = owns_client
        self._script = redis.register_script(SCRIPT)
        self._if_ours = redis.register_script(_IF_OURS)
        self._keys = [f"{options.prefix}:{{{account}}}:{name}" for name in ("log", "state")]
        self._limit_args = limit_arguments(limit)
        self._link = Link(where, options.reconnect)
        self._id = secrets.token_hex(6)  # this limiter's slots in the shared log
        self._counter = itertools.count()
        #: The pacer's highest rate, as ``RateState.top``; the shared rate as last seen.
        self._top = self._rate = requests / (limit.per + limit.margin)
        self._paused_until = 0.0
        self._throttled = 0
        self._waited = 0.0
        self._acquired = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        account: str,
        limit: RateLimit,
        options: SharedLimitOptions | None = None,
    ) -> RedisLimiter:
        """A limiter on the Redis at ``url`` (``redis://host:port/db``); nothing is sent yet."""
        options = options or SharedLimitOptions()
        try:
            pool = BlockingConnectionPool.from_url(
                url,
                max_connections=options.max_connections,
                socket_connect_timeout=options.timeout,
                socket_timeout=options.timeout,
                retry=Retry(NoBackoff(), 0),  # outages are handled by the link, visibly
            )
        except ValueError as exc:
            raise ConfigurationError(f"shared rate limit: bad Redis URL: {exc}") from None
        return cls(
            Redis.from_pool(pool),
            account=account,
            limit=limit,
            options=options,
            where=redacted_url(url),
            owns_client=True,
        )

    def __repr__(self) -> str:
        return f"<RedisLimiter {self._link.where} account={self.account} state={self._link.state}>"

    async def connect(self) -> None:
        """Reach Redis and load the script now: one clear line if either cannot be done.

        :class:`LimiterUnavailableError` when Redis does not answer, :class:`ConfigurationError`
        when it refuses the script (an ACL without ``EVALSHA``/``SCRIPT``, a Redis older than 5).
        """
        with self._refusals():
            await self._link.run(lambda: self._redis.script_load(SCRIPT))

    async def __aenter__(self) -> RedisLimiter:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def acquire(self) -> None:
        """Return when the fleet's window and pacer have room for one request, sent right away."""
        started = time.monotonic()
        try:
            member = self._new_member()
            reply = await self._call("reserve", member)
            while reply.delay != 0:
                if reply.delay < 0:  # a 429, a lost Redis or a late claim: line up again
                    member = self._new_member()
                    reply = await self._call("reserve", member)
                    continue
                await anyio.sleep(reply.delay)
                reply = await self._call("claim", member, reply.slot, reply.epoch)
        finally:
            self._waited += time.monotonic() - started
        self._acquired += 1

    async def throttled(self, retry_after: float | None) -> None:
        """Pause every process for ``retry_after`` and lower the shared rate (once per pause)."""
        pause = DEFAULT_PAUSE if retry_after is None else max(0.0, retry_after)
        self._throttled += 1
        await self._call("throttle", "", 0, 0, round(pause * _MICRO))

    def stats(self) -> LimiterStats:
        """As last seen from Redis; while Redis is away, ``paused_until`` is the next probe."""
        paused_until = self._paused_until
        if self._link.state is LinkState.DOWN:
            paused_until = max(paused_until, self._link.next_probe)
        return LimiterStats(
            ceiling=self.limit.ceiling,
            rate=self._rate,
            paused_until=paused_until,
            throttled=self._throttled,
            total_wait=self._waited,
            acquired=self._acquired,
            mode=self._mode(paused_until),
        )

    async def run_locked(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` holding the account's lock named ``key`` in Redis, shared by every
        process (``ensure_session`` holds the pair's): taken with ``SET NX PX``, renewed while
        ``work`` runs, released if still ours."""
        name = f"{self.options.prefix}:{{{self.account}}}:lock:{key}"
        token = secrets.token_hex(8)
        ttl = round(PAIR_LOCK_TTL * 1000)
        with self._refusals():
            while True:  # Redis tells no one when a lock is released: ask again shortly
                if await self._link.run(lambda: self._redis.set(name, token, nx=True, px=ttl)):
                    break
                await anyio.sleep(PAIR_LOCK_POLL)
        outcome: list[T] = []
        failure: list[Exception] = []  # work's own error, raised as it is, never in a group
        try:
            async with anyio.create_task_group() as group:

                async def renew() -> None:
                    while True:
                        await anyio.sleep(PAIR_LOCK_TTL / 3)
                        await self._link.run(lambda: self._if_ours(keys=[name], args=[token, ttl]))

                async def main() -> None:
                    try:
                        outcome.append(await work())
                    except Exception as error:
                        failure.append(error)
                    finally:
                        group.cancel_scope.cancel()

                group.start_soon(renew)
                group.start_soon(main)
            if failure:
                raise failure[0]
        finally:
            with anyio.CancelScope(shield=True):
                await self._link.run(lambda: self._if_ours(keys=[name], args=[token, 0]))
        return outcome[0]

    @property
    def link_state(self) -> LinkState:
        """``new``, ``up``, ``down`` (Redis away: every request held) or ``closed``."""
        return self._link.state

    async def aclose(self) -> None:
        if self._link.state is not LinkState.CLOSED:
            self._link.close()
            if self._owns_client:
                await self._redis.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    def _mode(self, paused_until: float) -> LimiterMode:
        if self._link.state is LinkState.DOWN:
            return LimiterMode.REDIS_DOWN
        if paused_until > time.monotonic():
            return LimiterMode.PAUSED
        if self._rate >= self._top * (1 - 1e-9):
            return LimiterMode.STEADY
        return LimiterMode.RECOVERING

    def _new_member(self) -> str:
        return f"{self._id}:{next(self._counter)}"

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        """Redis answered with an error (not an outage): a setup problem, said in one line."""
        try:
            yield
        except redis_errors.ResponseError as exc:
            raise ConfigurationError(
                f"shared rate limit: Redis at {self._link.where} refused: {exc}"
            ) from None

    async def _call(
        self, op: str, member: str, slot: int = 0, epoch: int = 0, pause: int = 0
    ) -> _Reply:
        args = [op, member, slot, epoch, pause, *self._limit_args]
        with self._refusals():
            raw = await self._link.run(lambda: self._script(keys=self._keys, args=args))
        reply = _Reply.parse(raw)
        self._rate = reply.rate
        self._paused_until = time.monotonic() + reply.pause if reply.pause > 0 else 0.0
        return reply
