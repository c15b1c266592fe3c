"""The live progress display: what a plain log and a terminal each show of a run."""

from __future__ import annotations

import io
import time
from collections import Counter

import anyio
import attrs
import pytest

from masking_async.batch import progress
from masking_async.batch.progress import Gauges, LimitView, Snapshot, limit_view, show_progress
from masking_async.batch.summary import Summary
from masking_async.client import Traffic


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
    """A line carries done/total, rate, ETA, errors, answers per second, the rows parked on a
    timer and the rate-limit wait; never the limiter's ceiling."""
    line = Snapshot(
        done=120,
        total=600,
        elapsed=60,
        errors=1,
        limit=LimitView(12.25),
        answers=42.5,
        gauges=Gauges(looking=3, backing_off=1),
    ).line()
    assert line == (
        "[1m00s] 120/600 rows  2.0 rows/s  ETA 4m00s  1 error  answers 42.5/s"
        "  3 waiting for a lookup  1 in backoff  waited 12.2 s for the rate limit"
    )


def test_limit_view_reads_the_limiter_contract_and_degrades() -> None:
    """The display reads LimiterStats' wait; without a limiter or traffic it shows neither."""
    assert limit_view(_Stats) == LimitView(12.25)
    assert limit_view(None) == LimitView()
    line = Snapshot(done=1, total=2, elapsed=1, errors=0).line()
    assert "/s  " not in line.split("rows/s", 1)[1]
    assert "inf" not in line


async def test_silence_is_said_plainly_with_its_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures and no answer for ``SILENCE`` s: the line says for how long, and why."""
    traffic = Traffic()
    traffic.failure("cannot connect to http://127.0.0.1:9: connection refused", time.monotonic())
    out = io.StringIO()
    with anyio.move_on_after(0.25):
        await show_progress(_summary(0, 5, 0), out, traffic=traffic, interval=0.1)
    assert "answers 0.0/s" in out.getvalue()
    assert "no answer" not in out.getvalue()  # not yet: the run has only just begun
    monkeypatch.setattr(progress, "SILENCE", 0.0)
    traffic.failure(traffic.last_failure, time.monotonic() + 1)
    with anyio.move_on_after(0.25):
        await show_progress(_summary(0, 5, 0), out, traffic=traffic, interval=0.1)
    assert "no answer for 0s: cannot connect to http://127.0.0.1:9: connection refused" in (
        out.getvalue()
    )


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
    assert "waited 12.2 s for the rate limit" in text
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
    assert view == LimitView(80.0, 400, "redis down")
    line = Snapshot(done=400, total=500, elapsed=10, errors=0, limit=view).line()
    assert "HELD: the rate limiter is redis down" in line
    assert "each request waited 0.20 s for the rate limit" in line
    steady = limit_view(lambda: Held(mode="steady"))
    assert steady.holding == ""
