"""Time for the emulator, injectable so tests move it forward instead of sleeping.

Two readings: :meth:`Clock.now` is wall time (epoch seconds) for the timestamps sessions carry, and
:meth:`Clock.monotonic` orders arrivals for the rate limit and the request log. A
:class:`ManualClock` keeps both still until :meth:`ManualClock.advance` moves them together.
Injected latency and stalls are real time on purpose: they exist to trip a client's timeouts.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Final, Protocol

__all__ = ["DEFAULT_START", "Clock", "ManualClock", "SystemClock"]

#: Where a :class:`ManualClock` starts unless told otherwise: a fixed instant, so tests repeat.
DEFAULT_START: Final = datetime(2024, 2, 1, 6, 0, 0, tzinfo=timezone.utc)


class Clock(Protocol):
    """What the emulator reads time from."""

    def now(self) -> float:
        """Wall time in epoch seconds (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to: ``clock.advance(3600)`` expires hour-long sessions."""

    def __init__(self, start: datetime | float = DEFAULT_START) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._elapsed = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move both readings forward; going back is refused, as a real clock would not."""
        if seconds < 0:
            raise ValueError("a clock cannot go back: advance() takes seconds >= 0")
        self._now += seconds
        self._elapsed += seconds

    def __repr__(self) -> str:
        moment = datetime.fromtimestamp(self._now, timezone.utc).isoformat()
        return f"ManualClock({moment!r}, monotonic={self._elapsed})"
