"""The operations a load run performs, over a pool of sessions it creates and must clean up.

Every session the run makes is tracked until it is known to be expired. States and transitions:

==========  ==============================  ==========
from        event                           to
==========  ==============================  ==========
(none)      create answered                 ACTIVE
ACTIVE      the run sends an expire         EXPIRING
EXPIRING    expire answered (or 404)        EXPIRED
EXPIRING    expire refused, failed or cut   STRANDED
ACTIVE      cleanup expired it              EXPIRED
STRANDED    cleanup expired it              EXPIRED
==========  ==============================  ==========

Only ACTIVE sessions are picked by reads and writes (until :meth:`SessionPool.close`); ACTIVE and
STRANDED ones are what the cleanup must expire. Any other move is a bug and raises. A create that
ended without a readable answer (timeout, dropped connection, 5xx, cut at the end) may still have
made a session: its parties are kept in ``lost`` so the cleanup can look for it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from typing import Final

from masking_async import spec
from masking_async.client import MaskingClient
from masking_async.errors import (
    APIError,
    NotFoundError,
    RateLimitedError,
    RequestTimeout,
    ServerError,
    TransportError,
)
from masking_async.load.timing import CallTiming, timing
from masking_async.models import CreateSessionRequest, UpdateSessionRequest
from masking_async.phones import party_pairs

__all__ = ["SessionPool", "State", "classify"]

#: The largest ``ring_timeout`` the API accepts: the random updates stay within its range.
_RING_MAX: Final = spec.bounds("ring_timeout")[1]


class State(enum.Enum):
    ACTIVE = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    STRANDED = "stranded"


_MOVES: dict[State | None, frozenset[State]] = {
    None: frozenset({State.ACTIVE}),
    State.ACTIVE: frozenset({State.EXPIRING, State.EXPIRED}),
    State.EXPIRING: frozenset({State.EXPIRED, State.STRANDED}),
    State.STRANDED: frozenset({State.EXPIRED}),
    State.EXPIRED: frozenset(),
}
#: States whose sessions may still be active at the server.
UNCLEAN = frozenset({State.ACTIVE, State.STRANDED})


class PoolError(RuntimeError):
    """A move the table above does not allow."""


def classify(exc: BaseException) -> str:
    """The kind of a failure, as the report counts it."""
    if isinstance(exc, RateLimitedError):
        return "429"
    if isinstance(exc, APIError):
        return str(exc.status)
    if isinstance(exc, RequestTimeout):
        return "timeout"
    if isinstance(exc, TransportError):
        return "connection"
    return type(exc).__name__


def _made_nothing(exc: BaseException) -> bool:
    """A create failing so was certainly not applied (4xx, 429 included); others may have been."""
    return isinstance(exc, APIError) and not isinstance(exc, ServerError)


class SessionPool:
    """Sessions this run created, each in a :class:`State`; reads and writes pick ACTIVE ones.

    Picking is O(1): the ACTIVE ones are also in a list with swap-removal, so a long run does
    not slow down as it grows.
    """

    def __init__(self, client: MaskingClient, *, seed: int = 0, first_pair: int = 0) -> None:
        self._client = client
        self._states: dict[str, State] = {}
        self._active: list[str] = []
        self._rng = random.Random(seed)
        self._pairs: Iterator[tuple[str, str]] = party_pairs(
            10**7, countries=("US", "GB", "IN"), start=first_pair
        )
        #: Parties of creates whose outcome is unknown: the server may hold such a session.
        self.lost: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._active)

    @property
    def created(self) -> int:
        return len(self._states)

    def state(self, uuid: str) -> State | None:
        return self._states.get(uuid)

    def unclean(self) -> list[str]:
        """Sessions that may still be active at the server, oldest first."""
        return [uuid for uuid, state in self._states.items() if state in UNCLEAN]

    def close(self) -> list[str]:
        """End the run's picks (the cleanup owns the sessions now); returns :meth:`unclean`."""
        self._active.clear()
        return self.unclean()

    def move(self, uuid: str, to: State) -> None:
        """Apply one transition of the table, or raise :class:`PoolError`."""
        now = self._states.get(uuid)
        if to not in _MOVES[now]:
            raise PoolError(f"session {uuid}: {now} -> {to} is not a move the pool makes")
        self._states[uuid] = to
        if to is State.ACTIVE:
            self._active.append(uuid)

    async def perform(self, op: str, measure: CallTiming | None = None) -> None:
        """Run one operation; with an empty pool a read or write becomes a create."""
        with timing(measure or CallTiming()):
            if op == "list":
                await self._client.list_sessions({"status": "active"}, limit=spec.PAGE_SIZE)
            elif op == "create" or not self._active:
                await self.create()
            elif op == "get":
                await self._client.get_session(self._pick())
            elif op == "update":
                await self._client.update_session(
                    self._pick(),
                    UpdateSessionRequest(ring_timeout=self._rng.randint(30, _RING_MAX)),
                )
            elif op == "expire":
                await self._expire(self._take())
            else:
                raise ValueError(f"unknown operation {op!r}")

    async def create(self, client: MaskingClient | None = None) -> None:
        """Create a session (through ``client``, default the measured one) and pool it."""
        first, second = next(self._pairs)
        try:
            session = await (client or self._client).create_session(
                CreateSessionRequest(first_party=first, second_party=second)
            )
        except BaseException as exc:  # cancellation too: a create cut mid-way may have landed
            if not _made_nothing(exc):
                self.lost.append((first, second))
            raise
        self.move(session.session_uuid, State.ACTIVE)

    async def _expire(self, uuid: str) -> None:
        try:
            await self._client.expire_session(uuid)
        except NotFoundError:
            self.move(uuid, State.EXPIRED)
            raise
        except BaseException:
            self.move(uuid, State.STRANDED)
            raise
        self.move(uuid, State.EXPIRED)

    def _pick(self) -> str:
        return self._active[self._rng.randrange(len(self._active))]

    def _take(self) -> str:
        """An ACTIVE session, now EXPIRING (out of the list in O(1))."""
        index = self._rng.randrange(len(self._active))
        self._active[index], self._active[-1] = self._active[-1], self._active[index]
        uuid = self._active.pop()
        self.move(uuid, State.EXPIRING)
        return uuid
