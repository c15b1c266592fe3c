"""What keeps two creates from taking the same session: recent answers, and one create per lane."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Final

import anyio

from masking_async.models import Session

__all__ = ["LaneLocks", "RecentSessions"]

#: How long a returned session is remembered: far longer than any create's lookup looks back.
RECENT_HORIZON: Final = 600.0


class RecentSessions:
    """Sessions this client returned lately: a lookup must never adopt one of them again."""

    def __init__(self, horizon: float = RECENT_HORIZON) -> None:
        self._horizon = horizon
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, session: Session) -> Session:
        now = time.monotonic()
        self._seen[session.session_uuid] = now
        self._seen.move_to_end(session.session_uuid)
        while self._seen and next(iter(self._seen.values())) < now - self._horizon:
            self._seen.popitem(last=False)
        return session

    def __contains__(self, session_uuid: object) -> bool:
        return session_uuid in self._seen


class LaneLocks:
    """One lock per key, alive only while someone holds or waits for it (FIFO within a key)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    def hold(self, key: str) -> _Lane:
        """``async with locks.hold(key):`` runs alone among the holders of ``key``."""
        return _Lane(self._locks, key)


class _Lane:
    """One hold of a lane: a plain class, not a generator, as every create enters one."""

    __slots__ = ("_key", "_lock", "_locks")

    def __init__(self, locks: dict[str, tuple[anyio.Lock, int]], key: str) -> None:
        self._locks, self._key = locks, key

    async def __aenter__(self) -> None:
        # A free lock is taken without yielding: the create that follows yields anyway.
        lock, users = self._locks.get(self._key) or (anyio.Lock(fast_acquire=True), 0)
        self._locks[self._key] = (lock, users + 1)
        self._lock = lock
        try:
            await lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        lock, users = self._locks[self._key]
        if users == 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)
