"""Every request the emulator saw, so tests can check what a client really sent.

An entry is added when a request arrives (``status`` is ``None`` while it is being answered) and
completed when its fate is known: the HTTP status, or 0 when the connection was closed without an
answer. ``at`` is the emulator clock's monotonic reading at arrival, the same clock the rate limit
counts on, so "never more than N in any window" can be checked from the log alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import attrs

__all__ = ["RequestLog", "RequestLogEntry"]


@attrs.define(slots=True)
class RequestLogEntry:
    """One request: arrival time, account (from the path), method, path, answer, fault if any."""

    at: float
    auth_id: str | None
    method: str
    path: str
    status: int | None = None
    #: ``"error"``, ``"throttle"``, ``"drop"``, ``"stall"``, or ``"rate_limit"`` for a real 429.
    fault: str | None = None
    #: The client had closed its connection before the answer was ready (the change, if the
    #: request got that far, was still applied; ``status`` is what the emulator would answer).
    client_gone: bool = False
    #: Real seconds from arrival to answer (``None`` while being answered).
    elapsed: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as plain JSON values (the control plane's ``/emulator/requests``)."""
        return attrs.asdict(self)


class RequestLog:
    """A bounded log (oldest entries fall off first); iterate it, ``len()`` it, ``clear()`` it."""

    def __init__(self, maxlen: int) -> None:
        self._entries: deque[RequestLogEntry] = deque(maxlen=maxlen)

    def add(self, entry: RequestLogEntry) -> RequestLogEntry:
        self._entries.append(entry)
        return entry

    def entries(self) -> list[RequestLogEntry]:
        """A copy, safe to keep while requests keep arriving."""
        return list(self._entries)

    def clear(self, auth_id: str | None = None) -> None:
        """Forget every entry, or only one account's."""
        if auth_id is None:
            self._entries.clear()
        else:
            kept = [entry for entry in self._entries if entry.auth_id != auth_id]
            self._entries = deque(kept, maxlen=self._entries.maxlen)

    def __iter__(self) -> Iterator[RequestLogEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)
