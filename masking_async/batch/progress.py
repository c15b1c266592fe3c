"""Live progress on stderr: a ``rich`` bar on a terminal, a plain line now and then elsewhere.

Both show rows done of the total, rows per second, the time left, errors, and — when the client
can tell (its limiter's ``stats()``) — the rate the client is holding to and the time spent
waiting for the rate limit, which the rows' own timings include and the server never saw.
Redraws are driven by this coroutine (no refresh thread), so the task group that runs the batch
owns the whole display and cancelling it ends the display.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, TextIO

import anyio
import attrs
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from masking_async.batch.summary import Summary

__all__ = ["LimitView", "Snapshot", "limit_view", "show_progress"]

#: Seconds between redraws on a terminal, and between lines elsewhere.
TERMINAL_INTERVAL: Final = 0.2
PLAIN_INTERVAL: Final = 5.0

#: Limiter modes in which requests flow; any other is shown, as it holds every request back.
_FLOWING: Final = frozenset({"", "steady", "recovering", "closed"})
#: Where the shared ``LimiterStats`` keeps each figure (the first name present is used).
_RATE_NAMES: Final = ("current", "current_rate", "rate")
_WAIT_NAMES: Final = ("total_wait", "wait_seconds", "waited", "total_wait_seconds")


@attrs.frozen
class LimitView:
    """What the display shows of the client's limiter; None where the limiter cannot tell."""

    rate: float | None = None
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
    mode = getattr(found, "mode", "")
    return LimitView(
        _first(found, _RATE_NAMES),
        _first(found, _WAIT_NAMES),
        _first(found, ("acquired",)),
        mode if isinstance(mode, str) and mode not in _FLOWING else "",
    )


@attrs.frozen
class Snapshot:
    """One moment of a run, as both displays print it."""

    done: int
    total: int
    elapsed: float
    errors: int
    limit: LimitView = LimitView()

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
        """The client's side: ``client at 59.0 req/s  waited 3.2 s for the rate limit``."""
        parts = []
        if self.limit.holding:
            parts.append(f"HELD: the rate limiter is {self.limit.holding}")
        if self.limit.rate is not None:
            parts.append(f"client at {self.limit.rate:.1f} req/s")
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


def _snapshot(summary: Summary, started: float, stats: Callable[[], Any] | None) -> Snapshot:
    return Snapshot(
        done=summary.done,
        total=summary.total,
        elapsed=time.monotonic() - started,
        errors=summary.outcomes["failed"],
        limit=limit_view(stats),
    )


async def show_progress(
    summary: Summary,
    stream: TextIO | None = None,
    *,
    stats: Callable[[], Any] | None = None,
    interval: float | None = None,
) -> None:
    """Run until cancelled, showing ``summary`` (and the limiter's ``stats()`` if given)."""
    out = stream or sys.stderr
    started = time.monotonic()
    if not out.isatty():
        while True:
            await anyio.sleep(interval or PLAIN_INTERVAL)
            out.write(_snapshot(summary, started, stats).line() + "\n")
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
                _draw(bar, task, _snapshot(summary, started, stats))
        finally:
            _draw(bar, task, _snapshot(summary, started, stats))


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
