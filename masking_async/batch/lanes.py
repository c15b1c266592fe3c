"""Lanes: rows that touch the same thing run one at a time, in the order they were admitted.

Two rows on one session (an expire, then an update) must reach the server in file order; two
creates of the same parties must not look up while the other is in flight, or one could
adopt the other's session. The producer admits rows in input order, so each row simply waits for
the one admitted before it in its lane. Rows in different lanes never wait for each other.

A row that ends unresolved (the server may or may not have applied it) blocks its lane for the
rest of the run: a later update sent now could land before a re-send of it, and a later create
of the pair could adopt its session. The rows behind it wait for the run that resolves it.
"""

from __future__ import annotations

import anyio

__all__ = ["Lanes", "Turn"]


class Turn:
    """One row's place in its lane: :meth:`wait` for the row before, :meth:`leave` when done."""

    def __init__(self, lanes: Lanes, key: str, before: Turn | None) -> None:
        self._lanes, self._key, self._before = lanes, key, before
        self.done = anyio.Event()
        self.blocker: str | None = None

    async def wait(self) -> str | None:
        """Wait for the row before; the key of an unresolved row the lane must not pass, if any."""
        if self._before is None:
            return None
        await self._before.done.wait()
        return self._before.blocker

    def leave(self, blocker: str | None = None) -> None:
        """Let the next row of the lane go (idempotent), telling it of ``blocker`` (an unresolved
        row it must not pass); forget the lane once it is empty."""
        if not self.done.is_set():
            self.blocker = blocker
            self.done.set()
        if self._lanes.tails.get(self._key) is self:
            del self._lanes.tails[self._key]


class Lanes:
    """The last admitted row of each busy lane; memory is bounded by the rows in flight."""

    def __init__(self) -> None:
        self.tails: dict[str, Turn] = {}

    def admit(self, key: str) -> Turn:
        turn = Turn(self, key, self.tails.get(key))
        self.tails[key] = turn
        return turn
