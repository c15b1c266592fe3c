"""The live progress display: what a plain log and a terminal each show of a run."""

from __future__ import annotations

import io
from collections import Counter

import anyio
import attrs

from masking_async.batch.progress import LimitView, Snapshot, limit_view, show_progress
from masking_async.batch.summary import Summary


@attrs.frozen
class _Stats:
    """The fields of the shared ``LimiterStats`` contract that the display reads."""

    ceiling: float = 60.0
    current: float = 42.5
    paused_until: float = 0.0
    throttled: int = 1
    total_wait: float = 12.25


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _summary(done: int, total: int, failed: int) -> Summary:
    summary = Summary(total=total)
    summary.outcomes = Counter(ok=done - failed, failed=failed)
    return summary


def test_snapshot_line_has_every_figure() -> None:
    """A line carries done/total, rate, ETA, errors, the client's rate and its rate-limit wait."""
    line = Snapshot(done=120, total=600, elapsed=60, errors=1, limit=LimitView(42.5, 12.25)).line()
    assert line == (
        "[1m00s] 120/600 rows  2.0 rows/s  ETA 4m00s  1 error  client at 42.5 req/s"
        "  waited 12.2 s for the rate limit"
    )


def test_limit_view_reads_the_limiter_contract_and_degrades() -> None:
    """The display reads LimiterStats' rate and wait; without a limiter it shows neither."""
    assert limit_view(_Stats) == LimitView(42.5, 12.25)
    assert limit_view(None) == LimitView()
    assert "req/s" not in Snapshot(done=1, total=2, elapsed=1, errors=0).line()


async def test_plain_lines_when_not_a_terminal() -> None:
    """Off a terminal, a plain line each interval, with no control characters."""
    out = io.StringIO()
    summary = _summary(done=3, total=10, failed=1)
    with anyio.move_on_after(0.35):
        await show_progress(summary, out, stats=_Stats, interval=0.1)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2
    assert all("3/10 rows" in line and "1 error" in line for line in lines)
    assert "\x1b" not in out.getvalue()


async def test_a_bar_on_a_terminal() -> None:
    """On a terminal, rich draws a bar with done/total and the same figures, and a final state."""
    out = _Terminal()
    summary = _summary(done=4, total=8, failed=0)
    with anyio.move_on_after(0.3):
        await show_progress(summary, out, stats=_Stats, interval=0.1)
    text = out.getvalue()
    assert "4/8" in text
    assert "client at 42.5 req/s" in text
    assert "━" in text  # the bar itself


def test_a_held_limiter_and_the_wait_of_one_request_are_shown() -> None:
    """A limiter holding everything back (a pause, Redis down) is named; the wait is per request."""

    @attrs.frozen
    class Held:
        rate: float = 12.0
        total_wait: float = 80.0
        acquired: int = 400
        mode: str = "redis down"

    view = limit_view(Held)
    assert view == LimitView(12.0, 80.0, 400, "redis down")
    line = Snapshot(done=400, total=500, elapsed=10, errors=0, limit=view).line()
    assert "HELD: the rate limiter is redis down" in line
    assert "each request waited 0.20 s for the rate limit" in line
    steady = limit_view(lambda: Held(mode="steady"))
    assert steady.holding == ""
