"""Retrying as a policy: one backoff formula, one loop of attempts, ``Retry-After`` read once.

Every retry in the code base goes through here: the client's calls, the batch engine's parked
rows, the load test's cleanup, the emulator's callback delivery and the shared limiter's Redis
link. Shaped like stamina's ``retry_context``, but the caller decides after each failure (the
client's decision needs the call's own state: its retry budget, a create's lookup, the 429s it
waited out), so an attempt is told ``retry(...)`` instead of judging the exception itself::

    async for attempt in retry_context(Backoff(0.1, 2.0), attempts=5, timeout=30.0):
        try:
            return await call()
        except TransientError as error:
            if not attempt.retry(error):
                raise

The loop ends when the body returns or raises. ``retry`` says False once the attempts or the
total time are spent; otherwise the loop calls the hook and waits before the next attempt.

Two uses of the same formula: a loop that sleeps (above), and a caller that waits on its own
timer and only needs the delay: :meth:`Backoff.delay` (the batch engine parks a row on a timer,
holding no worker; the Redis link's probe count is shared by every caller, so it keeps its own).

Why not stamina itself: its wait is exponential plus an additive jitter, not full jitter; its
``on`` judges the exception alone; and waiting is turned off by a process-wide switch, where
here each policy says so (``wait=False``), as every piece of state here belongs to its owner.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

import anyio
import attrs

__all__ = [
    "Attempt",
    "Backoff",
    "RetryContext",
    "RetryDetails",
    "RetryHook",
    "parse_retry_after",
    "retry_context",
]

#: The longest wait a ``Retry-After`` may name before it is treated as nonsense (a day).
_MAX_RETRY_AFTER: Final = 86_400.0


@attrs.frozen
class Backoff:
    """Exponential backoff with full jitter: THE formula, used by every retry in the code base.

    Before retry ``n`` (1 after the first failure) the wait is drawn uniformly from
    ``[floor, max(floor, ceiling(n))]`` where ``ceiling(n) = min(maximum, initial *
    multiplier ** (n - 1))``. Full jitter spreads clients that failed together (AWS's
    "Exponential Backoff And Jitter"); ``floor`` is a wait the server asked for (a 503's
    ``Retry-After``). ``jitter=False`` waits exactly the ceiling: for a schedule a reader must
    be able to predict (the emulator's callback delivery, the Redis link's probes).
    """

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: bool = True

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1, 2, ...)."""
        try:
            grown = self.initial * self.multiplier ** max(0, retry - 1)
        except OverflowError:
            return self.maximum
        return min(self.maximum, grown)

    def delay(self, retry: int, rng: random.Random, *, floor: float = 0.0) -> float:
        """Seconds to wait before retry number ``retry``: never under ``floor``."""
        top = self.ceiling(retry)
        if not self.jitter:
            return max(floor, top)
        return rng.uniform(floor, max(floor, top))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delta-seconds or an HTTP date (RFC 9110 10.2.3).

    ``None`` when absent or unreadable; a date in the past is 0; a wait beyond a day is unread.
    ``now``: the wall clock (epoch seconds) a date is measured from (default: ``time.time()``).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT
            when = when.replace(tzinfo=timezone.utc)
        clock = time.time() if now is None else now
        seconds = (when - datetime.fromtimestamp(clock, timezone.utc)).total_seconds()
    if math.isnan(seconds) or seconds > _MAX_RETRY_AFTER:
        return None
    return max(0.0, seconds)


@attrs.frozen
class RetryDetails:
    """What a hook learns before each wait: which attempt failed, why, and how long it waits."""

    #: The attempt that failed (1, 2, ...).
    attempt: int
    #: Failures that counted against ``attempts`` so far (this one included, if it counted).
    failures: int
    #: What failed, when an exception says it (``None``: a failure that is no exception, such
    #: as an answer with a retryable status).
    error: BaseException | None
    #: Seconds the loop waits now (0 when waiting is off).
    wait: float
    #: Seconds since the first attempt began.
    elapsed: float


RetryHook = Callable[[RetryDetails], None]


class Attempt:
    """One attempt of a :func:`retry_context` loop; ``number`` counts from 1."""

    __slots__ = ("_context", "number")

    def __init__(self, context: RetryContext, number: int) -> None:
        self._context = context
        self.number = number

    @property
    def failures(self) -> int:
        """Failures so far that counted against ``attempts``."""
        return self._context.failures

    def retry(
        self,
        error: BaseException | None = None,
        *,
        counts: bool = True,
        floor: float = 0.0,
        wait: float | None = None,
    ) -> bool:
        """Ask for another attempt after ``error``; False when the attempts or the time are spent.

        ``counts=False``: this failure spends no attempt (the client's 429s). ``wait``: wait
        exactly this long instead of the backoff (0: go again at once); otherwise the backoff of
        the failures so far, never under ``floor``.
        """
        return self._context.schedule(self.number, error, counts, floor, wait)


class RetryContext:
    """The attempts of one retried operation (see :func:`retry_context`): iterate them."""

    __slots__ = (
        "_attempts",
        "_backoff",
        "_deadline",
        "_hook",
        "_next",
        "_number",
        "_rng",
        "_started",
        "_waiting",
        "failures",
    )

    def __init__(
        self,
        backoff: Backoff,
        attempts: int | None,
        timeout: float | None,
        waiting: bool,
        hook: RetryHook | None,
        rng: random.Random,
    ) -> None:
        self._backoff, self._attempts, self._waiting = backoff, attempts, waiting
        self._hook, self._rng = hook, rng
        self._started = time.monotonic()
        self._deadline = None if timeout is None else self._started + timeout
        self._number = 0
        #: The retry the last attempt asked for, until the loop waits it out.
        self._next: RetryDetails | None = None
        self.failures = 0

    def __aiter__(self) -> RetryContext:
        return self

    async def __anext__(self) -> Attempt:
        if self._number:
            details = self._next
            if details is None:  # the body went on without asking for another attempt: done
                raise StopAsyncIteration
            self._next = None
            if self._hook is not None:
                self._hook(details)
            if details.wait > 0:
                await anyio.sleep(details.wait)
        self._number += 1
        return Attempt(self, self._number)

    def schedule(
        self,
        number: int,
        error: BaseException | None,
        counts: bool,
        floor: float,
        wait: float | None,
    ) -> bool:
        """:meth:`Attempt.retry`: whether a retry is allowed, and if so how long to wait."""
        failures = self.failures + 1 if counts else self.failures
        if self._attempts is not None and failures >= self._attempts:
            return False
        if not self._waiting:
            delay = 0.0
        elif wait is not None:
            delay = wait
        else:
            delay = self._backoff.delay(max(1, failures), self._rng, floor=floor)
        now = time.monotonic()
        if self._deadline is not None and now + delay > self._deadline:
            return False
        self.failures = failures
        self._next = RetryDetails(number, failures, error, delay, now - self._started)
        return True


def retry_context(
    backoff: Backoff,
    *,
    attempts: int | None = None,
    timeout: float | None = None,
    wait: bool = True,
    hook: RetryHook | None = None,
    rng: random.Random | None = None,
) -> RetryContext:
    """Attempts to iterate (``async for``), each after the wait its predecessor's
    :meth:`Attempt.retry` chose; the loop ends when its body returns, raises or asks no retry.

    ``attempts``: how many attempts may fail and count before ``retry`` says no (``None``: no
    bound). ``timeout``: seconds from the first attempt past which no wait may end (``None``:
    none). ``wait=False``: never sleep (tests); every bound still holds. ``hook``: called with a
    :class:`RetryDetails` just before each wait (instrumentation: a log line, an event).
    """
    return RetryContext(backoff, attempts, timeout, wait, hook, rng or random.Random())
