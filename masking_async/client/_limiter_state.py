"""When the next request may go: an exact ceiling, a pacer, a 429 pause and AIMD, as pure state.

Nothing here sleeps or reads a clock: every method takes ``now`` (seconds, ``time.monotonic()``
in the client), so tests drive it with any timeline they like. :mod:`._inprocess_limiter` wraps
it with a queue and a sleep.

Three rules decide the earliest time a request may be sent; the latest of them wins:

* **ceiling** — a ring of the last ``requests`` send times. The next send waits until the oldest
  of them is ``per + margin`` seconds old, so no window of ``per`` seconds ever holds more than
  ``requests`` sends: the limit's own definition, checked exactly, the first window included.
* **pacer** — sends are spaced ``1 / rate`` apart on a timetable that starts at the first send (a
  late send lets the next catch up, at most ``CATCH_UP`` of a window's worth), so requests arrive
  evenly instead of in a burst that a lower real limit would answer with a run of 429s. At the
  ceiling ``rate`` is ``requests / (per + margin)``, which the ring never has to correct.
* **pause** — after a 429 nothing goes before ``Retry-After`` has passed.

The mode is a small state machine; each row is one allowed transition, anything else is refused::

    mode        event       next        what happens
    steady      throttled   paused      rate := decrease * min(rate, sent in the last window / per)
    recovering  throttled   paused      (the same)
    paused      throttled   paused      the pause is extended; no second decrease for one pause
    paused      resume      recovering  the pause has passed; the quiet period starts
    recovering  climb       recovering  ``quiet`` seconds without a 429: rate += increase * ceiling,
                                        but for ``HOLD_PERIODS`` quiet periods after the pause not
                                        above ``HOLD_SHARE`` of the rate that was refused
    recovering  reach       steady      the rate is back at the ceiling
    any         close       closed      nothing more is let through

Why the last window's sends and not a shorter span: when a sliding-window limit refuses a
request, the sends of its last window are the limit itself, even a second into a job. (A 429 that
is no limit at all, a fault, then cuts deep; the climb brings the rate back.)

The hold is what keeps the average near a lower real limit: without it the climb would probe
past the limit every few windows, and each probe costs a pause. With no limit
(``requests=None``) only the pause applies: ``resume`` is followed at once by
``reach``.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Sequence
from typing import Final

from masking_async.client._limiter_protocol import LimiterMode, LimiterStats
from masking_async.client._options import RateLimit
from masking_async.errors import ConfigurationError

__all__ = [
    "CATCH_UP",
    "DEFAULT_PAUSE",
    "LimiterEvent",
    "Mode",
    "RateState",
    "most_in_window",
    "next_mode",
]

#: The share of a window a late pacer may make up at once (wake-ups are a few ms late under
#: load): 50 ms at 5 s, and never more than 1 % of the limit in one burst.
CATCH_UP: Final = 0.01
#: The pause after a 429 that carries no usable Retry-After.
DEFAULT_PAUSE: Final = 1.0
#: The rate never drops below this share of the ceiling: a 429 must not stop a job outright.
FLOOR_SHARE: Final = 0.02
#: After a 429 the climb stops at this share of the rate that was refused ...
HOLD_SHARE: Final = 0.95
#: ... for this many quiet periods after the pause, then probes on (the limit may have risen).
HOLD_PERIODS: Final = 10


#: The limiter's modes: the one Enum every limiter reports (``REDIS_DOWN`` is only the shared
#: limiter's, so this machine's table never moves to it and refuses every event in it).
Mode = LimiterMode


class LimiterEvent(enum.Enum):
    THROTTLED = "throttled"
    RESUME = "resume"
    CLIMB = "climb"
    REACH = "reach"
    CLOSE = "close"


_TRANSITIONS: Final[dict[tuple[Mode, LimiterEvent], Mode]] = {
    (Mode.STEADY, LimiterEvent.THROTTLED): Mode.PAUSED,
    (Mode.RECOVERING, LimiterEvent.THROTTLED): Mode.PAUSED,
    (Mode.PAUSED, LimiterEvent.THROTTLED): Mode.PAUSED,
    (Mode.PAUSED, LimiterEvent.RESUME): Mode.RECOVERING,
    (Mode.RECOVERING, LimiterEvent.CLIMB): Mode.RECOVERING,
    (Mode.RECOVERING, LimiterEvent.REACH): Mode.STEADY,
    (Mode.STEADY, LimiterEvent.CLOSE): Mode.CLOSED,
    (Mode.PAUSED, LimiterEvent.CLOSE): Mode.CLOSED,
    (Mode.RECOVERING, LimiterEvent.CLOSE): Mode.CLOSED,
    (Mode.CLOSED, LimiterEvent.CLOSE): Mode.CLOSED,
}


def next_mode(mode: Mode, event: LimiterEvent) -> Mode:
    """The mode after ``event``, or :class:`ConfigurationError` for a transition the table lacks."""
    try:
        return _TRANSITIONS[mode, event]
    except KeyError:
        message = f"rate limiter: {event.value} is not allowed when {mode.value}"
        raise ConfigurationError(message) from None


def most_in_window(times: Sequence[float], per: float) -> int:
    """The most of ``times`` (sorted) any window ``(t - per, t]`` holds: the ceiling, as a check.

    Tests and benchmarks measure with it what the ring guarantees.
    """
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= per:
            start += 1
        best = max(best, end - start + 1)
    return best


class RateState:
    """One account's sending state; see the module docstring for the rules and the modes."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.mode = Mode.STEADY
        self._ring: deque[float] = deque(maxlen=limit.requests)
        #: The pacer's ceiling: ``requests`` sends span ``per + margin`` seconds.
        self.top = (
            math.inf if limit.requests is None else limit.requests / (limit.per + limit.margin)
        )
        self.rate = self.top
        self.paused_until = 0.0
        self._slot = -math.inf  # the pacer's next send time; its timetable starts at the first send
        self._climb_at = math.inf
        self._hold_until = 0.0
        self._refused_rate = math.inf  # the rate sent just before the last 429
        self.throttled_count = 0
        self.acquired = 0

    def _move(self, event: LimiterEvent) -> None:
        self.mode = next_mode(self.mode, event)

    def advance(self, now: float) -> None:
        """Apply what time alone does: the end of a pause, the climbs of quiet periods."""
        if self.mode is Mode.PAUSED and now >= self.paused_until:
            quiet = self.limit.quiet_period
            self._move(LimiterEvent.RESUME)
            self._climb_at = self.paused_until + quiet
            self._hold_until = self.paused_until + HOLD_PERIODS * quiet
        # Bounded: each turn climbs one step (at most 1 / increase of them), is one of the
        # HOLD_PERIODS turns at the hold level, or reaches the ceiling and ends the loop.
        while self.mode is Mode.RECOVERING and (self.rate >= self.top or now >= self._climb_at):
            if self.rate >= self.top:
                self._move(LimiterEvent.REACH)
                continue
            self._move(LimiterEvent.CLIMB)
            step = self.rate + self.limit.increase * self.limit.ceiling
            if self._climb_at < self._hold_until:
                step = min(step, max(self.rate, HOLD_SHARE * self._refused_rate))
            self.rate = min(self.top, step)
            self._climb_at += self.limit.quiet_period

    def next_send(self, now: float) -> float:
        """The earliest time the next request may be sent (``<= now``: at once)."""
        self.advance(now)
        if self.mode is Mode.CLOSED:
            raise ConfigurationError("the rate limiter is closed")
        earliest = max(now, self.paused_until)
        if self.limit.requests is not None:
            if len(self._ring) == self.limit.requests:
                oldest, span = self._ring[0], self.limit.per + self.limit.margin
                freed = oldest + span
                if freed - oldest < span:  # rounding: measured back, the window must be whole
                    freed = math.nextafter(freed, math.inf)
                earliest = max(earliest, freed)
            earliest = max(earliest, self._slot)
        return earliest

    def sent(self, now: float) -> None:
        """Count a send at ``now``; the caller has checked :meth:`next_send`."""
        self.acquired += 1
        if self.limit.requests is None:
            return
        self._ring.append(now)
        start = now if self._slot == -math.inf else max(self._slot, now - CATCH_UP * self.limit.per)
        self._slot = start + 1 / self.rate

    def sent_in_window(self, now: float) -> int:
        """Sends in the last ``per`` seconds (at most ``requests``: the ring holds no more)."""
        horizon = now - self.limit.per
        return sum(1 for moment in self._ring if moment > horizon)

    def throttled(self, now: float, retry_after: float | None) -> None:
        """A 429: hold everyone for ``retry_after`` and, once per pause, slow down."""
        self.advance(now)
        self.throttled_count += 1
        first = self.mode is not Mode.PAUSED
        self._move(LimiterEvent.THROTTLED)
        pause = DEFAULT_PAUSE if retry_after is None else max(0.0, retry_after)
        self.paused_until = max(self.paused_until, now + pause)
        if first and self.limit.requests is not None:
            just_sent = min(self.rate, self.sent_in_window(now) / self.limit.per)
            self._refused_rate = just_sent
            self.rate = max(FLOOR_SHARE * self.top, self.limit.decrease * just_sent)
        # Requests resume evenly at the new rate from the end of the pause, not in a burst.
        self._slot = max(self._slot, self.paused_until)

    def close(self) -> None:
        self._move(LimiterEvent.CLOSE)

    def stats(self, now: float, total_wait: float) -> LimiterStats:
        self.advance(now)
        return LimiterStats(
            ceiling=self.limit.ceiling,
            rate=self.rate,
            paused_until=self.paused_until,
            throttled=self.throttled_count,
            total_wait=total_wait,
            acquired=self.acquired,
            mode=self.mode,
        )
