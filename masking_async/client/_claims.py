"""What keeps two creates from taking the same session: recent answers, and one create per lane."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
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
    """One lane per key: its holder runs alone, the others wait their turn in order (FIFO).

    A lane exists only while someone holds it; a free one costs a dictionary entry, no lock
    object and no await (every create enters one, and most find theirs free).
    """

    def __init__(self) -> None:
        self._queues: dict[str, deque[anyio.Event]] = {}

    def hold(self, key: str) -> _Lane:
        """``async with locks.hold(key):`` runs alone among the holders of ``key``."""
        return _Lane(self._queues, key)


class _Lane:
    """One hold of a lane: taken at once when free, else after the holders queued before it."""

    __slots__ = ("_key", "_queues")

    def __init__(self, queues: dict[str, deque[anyio.Event]], key: str) -> None:
        self._queues, self._key = queues, key

    async def __aenter__(self) -> None:
        queue = self._queues.get(self._key)
        if queue is None:
            self._queues[self._key] = deque()
            return
        turn = anyio.Event()
        queue.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self._pass_on()  # handed the lane while being cancelled: hand it on
            else:
                queue.remove(turn)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._pass_on()

    def _pass_on(self) -> None:
        """Give the lane to the next in line, or free it."""
        queue = self._queues[self._key]
        if queue:
            queue.popleft().set()
        else:
            del self._queues[self._key]
