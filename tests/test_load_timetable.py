"""Timetables (constant and ramping stages) and thresholds, without a network."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking_async.load.thresholds import ThresholdError, parse_threshold
from masking_async.load.timetable import Stage, Timetable, TimetableError, parse_stages

stages = st.lists(
    st.builds(
        Stage,
        duration=st.sampled_from([0.0, 0.5, 1.0, 2.5, 7.0]),
        target=st.floats(min_value=0, max_value=200, allow_nan=False),
    ),
    min_size=1,
    max_size=5,
)


def _count_by(timetable: Timetable, t: float) -> float:
    """Requests due by ``t``: the integral of the piecewise-linear rate (trapezoids)."""
    start = rate = total = 0.0
    for stage in timetable.stages:
        if stage.duration == 0:
            rate = stage.target
            continue
        span = min(max(t - start, 0.0), stage.duration)
        slope = (stage.target - rate) / stage.duration
        total += rate * span + slope * span**2 / 2
        start, rate = start + stage.duration, stage.target
    return total


@settings(deadline=None, max_examples=60)  # no time limit per example: the machine is shared
@given(stages)
def test_offsets_follow_the_integral_of_the_rate(chosen: list[Stage]) -> None:
    """Request i is due when i requests are due by the rate's integral, in order, in the run."""
    timetable = Timetable(tuple(chosen))
    offsets = list(timetable.offsets())
    assert len(offsets) == timetable.total_requests
    assert offsets == sorted(offsets)
    assert all(0 <= offset <= timetable.duration + 1e-9 for offset in offsets)
    for index, offset in enumerate(offsets):
        assert _count_by(timetable, offset) == pytest.approx(index, abs=1e-6)


def test_constant_rate_is_i_over_rate() -> None:
    """A constant rate puts request i at i / rate, for a duration or a count."""
    assert list(Timetable.constant(100, requests=4).offsets()) == pytest.approx(
        [0, 0.01, 0.02, 0.03]
    )
    timetable = Timetable.constant(90, duration=20)
    assert timetable.total_requests == 1800
    assert timetable.mean_rate == pytest.approx(90)


def test_stage_text() -> None:
    """`--stages` reads DURATION:RATE pairs with a unit on each duration."""
    assert parse_stages("30s:50/s, 1m:200/s,500ms:0") == (
        Stage(30, 50),
        Stage(60, 200),
        Stage(0.5, 0),
    )
    ramp = Timetable(parse_stages("10s:100/s"))
    assert ramp.total_requests == 500
    first_half = [offset for offset in ramp.offsets() if offset < 5]
    assert len(first_half) == math.ceil(100 / 10 * 5**2 / 2)


@pytest.mark.parametrize("text", ["", "30s", "30:50/s", "30s:", "x:5/s", "1s:0/s", "2s:-1/s"])
def test_stage_text_refused(text: str) -> None:
    """Stage text it cannot read, or stages that send nothing, name the option."""
    with pytest.raises(TimetableError, match="--stages"):
        parse_stages(text)


@pytest.mark.parametrize(
    ("text", "metric", "op", "limit"),
    [
        ("p99<200ms", "p99", "<", 200.0),
        ("p99.9 <= 1.5s", "p99.9", "<=", 1500.0),
        ("p50<800us", "p50", "<", 0.8),
        ("max<250", "max", "<", 250.0),
        ("mean>1ms", "mean", ">", 1.0),
        ("errors<1%", "errors", "<", 0.01),
        ("rate_429<=0.05", "rate_429", "<=", 0.05),
    ],
)
def test_threshold_text(text: str, metric: str, op: str, limit: float) -> None:
    """Thresholds read as k6 writes them; latencies in ms, rates as shares."""
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.op) == (metric, op)
    assert threshold.limit == pytest.approx(limit)


def test_threshold_holds() -> None:
    """A threshold compares as written, and nothing measured never holds."""
    assert parse_threshold("p99<200ms").holds(199.9)
    assert not parse_threshold("p99<200ms").holds(200.0)
    assert parse_threshold("p99<=200ms").holds(200.0)
    assert not parse_threshold("p99<200ms").holds(math.nan)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("p99", "METRIC OP VALUE"),
        ("p0<1s", "above 0"),
        ("errors<2s", "percentage"),
        ("p99<5%", "a time"),
        ("rate_429<101%", "at most 100%"),
    ],
)
def test_threshold_text_refused(text: str, rule: str) -> None:
    """Each bad threshold names itself and the rule it breaks."""
    with pytest.raises(ThresholdError, match=rule) as caught:
        parse_threshold(text)
    assert str(caught.value).startswith(f"--threshold {text!r}")
