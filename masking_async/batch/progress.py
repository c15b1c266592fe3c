"""Live progress on stderr: a ``rich`` bar on a terminal, a plain line now and then elsewhere.

Both show rows done of the total, rows per second, the time left, errors, what really got
through (answers received per second, from the client's :class:`~masking_async.client.Traffic`),
the rows parked on a timer (waiting for a lookup, or in backoff), the time each request waited
for the rate limit, and — when nothing has come back for a while — one plain sentence saying so
and why (``no answer for 20s: cannot connect to ...: connection refused``). Redraws are driven by
this coroutine (no refresh thread), so the task group that runs the batch owns the whole display
and cancelling it ends the display.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, TextIO

import anyio
import attrs
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from masking_async.batch.summary import Summary
from masking_async.client import FLOWING, Traffic

__all__ = ["Gauges", "LimitView", "Snapshot", "limit_view", "show_progress"]

#: Seconds between redraws on a terminal, and between lines elsewhere.
TERMINAL_INTERVAL: Final = 0.2
PLAIN_INTERVAL: Final = 5.0

#: Seconds of answers the answer rate is averaged over.
RATE_WINDOW: Final = 5.0
#: Seconds without an answer, failures meanwhile, before the display says so.
SILENCE: Final = 5.0

_WAIT_NAMES: Final = ("total_wait", "wait_seconds", "waited", "total_wait_seconds")


@attrs.define
class Gauges:
    """Rows parked on a timer, holding no worker: live counts the row drivers keep."""

    #: Waiting for a lookup of a create whose answer was lost, or to send a change again.
    looking: int = 0
    #: Waiting out a backoff before sending again.
    backing_off: int = 0

    def add(self, name: Literal["looking", "backing_off"], delta: int) -> None:
        setattr(self, name, getattr(self, name) + delta)


@attrs.frozen
class LimitView:
    """What the display shows of the client's limiter; None where the limiter cannot tell."""

    waited: float | None = None
    #: Requests the limiter let through, to turn the summed wait into a wait per request.
    acquired: float | None = None
    #: The limiter's mode when it holds everything back (``paused``, ``redis down``).
    holding: str = ""


def _first(stats: object, names: tuple[str, ...]) -> float | None:
    for name in names:
        value = getattr(stats, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def limit_view(stats: Callable[[], Any] | None) -> LimitView:
    """Read a limiter's ``stats()`` (any object with the shared contract's fields), or nothing."""
    if stats is None:
        return LimitView()
    found = stats()
    mode = getattr(found, "mode", None)  # a LimiterMode, or its name from another limiter
    return LimitView(
        _first(found, _WAIT_NAMES),
        _first(found, ("acquired",)),
        str(mode) if isinstance(mode, str) and mode and mode not in FLOWING else "",
    )


@attrs.frozen
class Snapshot:
    """One moment of a run, as both displays print it."""

    done: int
    total: int
    elapsed: float
    errors: int
    limit: LimitView = LimitView()
    #: Answers received per second lately; None when the client cannot tell.
    answers: float | None = None
    gauges: Gauges = attrs.field(factory=Gauges)
    #: ``no answer for 20s: <why>`` when nothing has come back for a while, else "".
    silence: str = ""

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.total or not self.rate:
            return None
        return max(0, self.total - self.done) / self.rate

    def details(self) -> str:
        """Speed, time left and errors: ``9.8 rows/s  ETA 3m10s  0 errors``."""
        parts = [f"{self.rate:.1f} rows/s"]
        if self.eta is not None:
            parts.append(f"ETA {_duration(self.eta)}")
        parts.append(f"{self.errors} error" + ("" if self.errors == 1 else "s"))
        return "  ".join(parts)

    def limits(self) -> str:
        """The wire: ``answers 59.0/s  3 waiting for a lookup  each request waited 0.20 s ...``."""
        parts = [self.silence] if self.silence else []
        if self.limit.holding:
            parts.append(f"HELD: the rate limiter is {self.limit.holding}")
        if self.answers is not None:
            parts.append(f"answers {self.answers:.1f}/s")
        if self.gauges.looking:
            parts.append(f"{self.gauges.looking} waiting for a lookup")
        if self.gauges.backing_off:
            parts.append(f"{self.gauges.backing_off} in backoff")
        if self.limit.waited is not None and self.limit.acquired:
            # Summed over every caller it would read as hours: show the wait of one request.
            each = self.limit.waited / self.limit.acquired
            parts.append(f"each request waited {each:.2f} s for the rate limit")
        elif self.limit.waited is not None:
            parts.append(f"waited {self.limit.waited:.1f} s for the rate limit")
        return "  ".join(parts)

    def line(self) -> str:
        """The plain line: ``[12s] 120/2000 rows  9.8 rows/s  ETA 3m10s  0 errors ...``."""
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        return "  ".join(
            part
            for part in (f"[{_duration(self.elapsed)}] {count} rows", self.details(), self.limits())
            if part
        )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


class _Watch:
    """Samples the client's traffic at each redraw: the answer rate, and how long the silence."""

    def __init__(self, traffic: Traffic | None) -> None:
        self.traffic = traffic
        self.started = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque()
        if traffic is not None:
            self._samples.append((self.started, traffic.answered))

    def answers(self, now: float) -> float | None:
        if self.traffic is None:
            return None
        samples = self._samples
        samples.append((now, self.traffic.answered))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        (then, before), (_, count) = samples[0], samples[-1]
        if now - then <= 0:
            return 0.0
        return (count - before) / (now - then)

    def silence(self, now: float) -> str:
        traffic = self.traffic
        if traffic is None or traffic.last_failure_at is None:
            return ""
        heard = traffic.last_answer if traffic.last_answer is not None else self.started
        if traffic.last_failure_at < heard or now - heard < SILENCE:
            return ""
        return f"no answer for {_duration(now - heard)}: {traffic.last_failure}"


def _snapshot(
    summary: Summary, watch: _Watch, stats: Callable[[], Any] | None, gauges: Gauges | None
) -> Snapshot:
    now = time.monotonic()
    return Snapshot(
        done=summary.done,
        total=summary.total,
        elapsed=now - watch.started,
        errors=summary.outcomes["failed"],
        limit=limit_view(stats),
        answers=watch.answers(now),
        gauges=gauges or Gauges(),
        silence=watch.silence(now),
    )


async def show_progress(
    summary: Summary,
    stream: TextIO | None = None,
    *,
    stats: Callable[[], Any] | None = None,
    traffic: Traffic | None = None,
    gauges: Gauges | None = None,
    interval: float | None = None,
) -> None:
    """Run until cancelled, showing ``summary``, and what the client's limiter ``stats()``, its
    ``traffic`` and the run's ``gauges`` tell, where given."""
    out = stream or sys.stderr
    watch = _Watch(traffic)

    def snapshot() -> Snapshot:
        return _snapshot(summary, watch, stats, gauges)

    if not out.isatty():
        while True:
            await anyio.sleep(interval or PLAIN_INTERVAL)
            out.write(snapshot().line() + "\n")
            out.flush()
    bar = _Bar(
        TextColumn("rows"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[details]}"),
        console=Console(file=out, force_terminal=True),
        auto_refresh=False,
    )
    task = bar.add_task("rows", total=summary.total or None, details="")
    with bar:
        try:
            while True:
                await anyio.sleep(interval or TERMINAL_INTERVAL)
                _draw(bar, task, snapshot())
        finally:
            _draw(bar, task, snapshot())


class _Bar(Progress):
    """rich's progress bar with a second line for the client's rate limit."""

    limits = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.limits:
            yield Text("     " + self.limits, style="dim")


def _draw(bar: _Bar, task: Any, snapshot: Snapshot) -> None:
    bar.limits = snapshot.limits()
    bar.update(
        task,
        completed=snapshot.done,
        total=snapshot.total or None,
        details=snapshot.details(),
    )
    bar.refresh()
