"""What came back from the server: answers and failures counted as they happen.

The limiter says how fast the client *may* send; these counts say what really got through, so a
progress line can show answers per second, and say plainly when nothing has for a while.
"""

from __future__ import annotations

import attrs

__all__ = ["Traffic"]


@attrs.define
class Traffic:
    """Live counts of one client (read them, never write them): kept by ``MaskingClient``."""

    #: Requests that got an HTTP answer, of any status (each reached the server).
    answered: int = 0
    #: Requests that got none: no connection, reset, timeout.
    unanswered: int = 0
    #: Monotonic time of the last answer, None before the first.
    last_answer: float | None = None
    #: The last failure with no answer, as its error says it (``cannot connect to ...``), and
    #: its monotonic time.
    last_failure: str = ""
    last_failure_at: float | None = None

    def answer(self, now: float) -> None:
        self.answered += 1
        self.last_answer = now

    def failure(self, why: str, now: float) -> None:
        self.unanswered += 1
        self.last_failure, self.last_failure_at = why, now
