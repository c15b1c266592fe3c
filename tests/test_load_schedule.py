"""The load generator's timetable, recorder and options, without a network."""

from __future__ import annotations

import anyio
import pytest

from masking_async.load.plan import LoadPlan, PlanError, parse_mix, parse_rate
from masking_async.load.schedule import run_schedule
from masking_async.load.timing import CallTiming


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("200/s", 200.0), ("300/5s", 60.0), ("1200/min", 20.0), ("50", 50.0), ("10/2", 5.0)],
)
def test_parse_rate(text: str, per_second: float) -> None:
    """Rates are read as count per period in every documented spelling."""
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["", "fast", "0/s", "10/fortnight", "-5/s"])
def test_parse_rate_rejects(text: str) -> None:
    """A rate that cannot be read is an error naming the option."""
    with pytest.raises(PlanError, match="--rate"):
        parse_rate(text)


def test_parse_mix() -> None:
    """A mix names operations and whole-number weights; unknown names are refused."""
    assert parse_mix("create=5,get=3, list=1") == {"create": 5, "get": 3, "list": 1}
    with pytest.raises(PlanError, match="unknown operation 'delete'"):
        parse_mix("delete=1")
    with pytest.raises(PlanError, match="weight"):
        parse_mix("create=x")


def test_plan_needs_duration_or_count() -> None:
    """A plan has exactly one stopping rule."""
    with pytest.raises(PlanError):
        LoadPlan(rate=10)
    assert LoadPlan(rate=10, duration=2).total_requests == 20


async def test_schedule_holds_rate_and_mix() -> None:
    """Every planned request is sent, in the mix's proportions, and the run reports them."""
    plan = LoadPlan(rate=400, requests=200, mix={"create": 3, "get": 1}, seed=7)
    seen: list[str] = []

    async def perform(op: str, timing: CallTiming) -> None:
        seen.append(op)
        await anyio.sleep(0.001)

    result = await run_schedule(plan, perform, lambda exc: "boom")
    assert result.sent == len(seen) == result.recorder.completed == 200
    assert 120 < seen.count("create") < 180
    assert result.elapsed >= 199 / 400
    assert result.recorder.failed == 0
    assert set(result.recorder.histograms) == {"create", "get"}
    assert result.kept_up


async def test_stall_shows_in_tail_and_falling_behind_is_reported() -> None:
    """A stall that fills every slot is charged to the requests it delayed, and flagged."""
    plan = LoadPlan(rate=200, requests=100, max_in_flight=4, lag_tolerance=0.05)
    calls = 0
    stall_end = float("inf")

    async def perform(op: str, timing: CallTiming) -> None:
        # The server freezes for 0.3 s from the 10th request: everything in flight waits.
        nonlocal calls, stall_end
        calls += 1
        if calls == 10:
            stall_end = anyio.current_time() + 0.3
        wait = stall_end - anyio.current_time()
        if 0 < wait < 1:
            await anyio.sleep(wait)

    result = await run_schedule(plan, perform, lambda exc: "boom")
    latency = result.recorder.latency_ms("create")
    assert latency["max"] >= 250
    # Only ~4 requests were in flight when the stall began, but the ~60 due during it are
    # charged from their due time: the tail shows the stall, not just its first victims.
    assert latency["p90"] >= 100
    assert not result.kept_up
    assert any("fell behind" in reason for reason in result.not_kept_up)


async def test_failures_are_classified() -> None:
    """Each failure is counted under the kind the classifier gives it."""
    plan = LoadPlan(rate=1000, requests=20)

    async def perform(op: str, timing: CallTiming) -> None:
        raise RuntimeError("429")

    result = await run_schedule(plan, perform, lambda exc: str(exc))
    assert result.recorder.errors == {"create:429": 20}
    assert result.recorder.throttled == 20
