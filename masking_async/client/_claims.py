"""What keeps two creates from taking the same session: recent answers, and one create per lane."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (anyio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
