"""Lanes: rows that touch the same thing run one at a time, in the order they were admitted.

Two rows on one session (an expire, then an update) must reach the server in file order; two
creates of the same parties must not look up while the other is in flight, or one could
adopt the other's session. The producer admits rows in input order, so each row simply waits for
the one admitted before it in its lane. Rows in different lanes never wait for each other.
"""

from __future__ import annotations

import anyio

__all__ = ["Lanes", "Turn"]


class Turn:
    """One row's place in its lane: :meth:`wait` for the row before, :meth:`leave` when done."""

    def __init__(self, lanes: Lanes, key: str, before: anyio.Event | None) -> None:
        self._lanes, self._key, self._before = lanes, key, before
        self.done = anyio.Event()

    async def wait(self) -> None:
        if self._before is not None:
            await self._before.wait()

    def leave(self) -> None:
        """Let the next row of the lane go (idempotent); forget the lane once it is empty."""
        self.done.set()
        if self._lanes.tails.get(self._key) is self.done:
            del self._lanes.tails[self._key]


class Lanes:
    """The last admitted row of each busy lane; memory is bounded by the rows in flight."""

    def __init__(self) -> None:
        self.tails: dict[str, anyio.Event] = {}

    def admit(self, key: str) -> Turn:
        turn = Turn(self, key, self.tails.get(key))
        self.tails[key] = turn.done
        return turn
