"""The limiter's pure state: transition table, exact ceiling, pause and AIMD on simulated time."""

from __future__ import annotations

import ast
import math
from collections import deque
from pathlib import Path

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import masking_async
from masking_async import ConfigurationError, LimiterMode, LimiterStats, RateLimit
from masking_async.client import FLOWING
from masking_async.client._limiter_state import (
    _TRANSITIONS,
    FLOOR_SHARE,
    LimiterEvent,
    Mode,
    RateState,
    most_in_window,
    next_mode,
)


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("event", list(LimiterEvent))
def test_every_transition_is_in_the_table_or_refused(mode: Mode, event: LimiterEvent) -> None:
    """Each (mode, event) pair either moves as the docstring's table says or is refused."""
    if (mode, event) in _TRANSITIONS:
        assert next_mode(mode, event) is _TRANSITIONS[mode, event]
    else:
        with pytest.raises(ConfigurationError, match=event.value):
            next_mode(mode, event)


def test_state_walks_steady_paused_recovering_steady_closed() -> None:
    """A 429 pauses, the pause ends in recovering, quiet periods climb back to steady."""
    limit = RateLimit(100, 1.0, margin=0.0, increase=0.1, quiet=1.0)
    state = RateState(limit, 0.0)
    for i in range(100):
        state.sent(i / 100)
    state.throttled(1.0, 2.0)
    assert state.mode is Mode.PAUSED
    assert state.rate == pytest.approx(0.9 * 99)  # the sends after 0.0 are in (0, 1]
    assert state.next_send(1.5) == 3.0
    state.throttled(1.5, 0.5)  # during the pause: extends nothing earlier, no second decrease
    assert state.rate == pytest.approx(0.9 * 99)
    assert state.paused_until == 3.0
    state.advance(3.0)
    assert state.mode is Mode.RECOVERING
    state.advance(4.0)
    assert state.rate == pytest.approx(0.95 * 99)  # one step, stopped at the hold level
    state.advance(12.5)
    assert state.rate == pytest.approx(0.95 * 99)  # held for ten quiet periods after the pause
    state.advance(14.0)
    assert state.mode is Mode.STEADY
    assert state.rate == 100
    state.close()
    with pytest.raises(ConfigurationError, match="closed"):
        state.next_send(8.0)
    with pytest.raises(ConfigurationError):
        state.throttled(8.0, 1.0)


def test_no_limit_still_pauses() -> None:
    """With the limit off, sends go at once except during a 429's pause."""
    state = RateState(RateLimit.off(), 0.0)
    assert state.next_send(0.0) == 0.0
    state.throttled(0.0, None)
    assert state.next_send(0.5) == 1.0
    assert state.stats(2.0, 0.0).mode == "steady"
    assert math.isinf(state.stats(2.0, 0.0).ceiling)


def _greedy(state: RateState, count: int, start: float = 0.0) -> list[float]:
    """A sender that always has a request waiting: each goes at the earliest allowed time."""
    now, times = start, []
    for _ in range(count):
        now = state.next_send(now)
        state.sent(now)
        times.append(now)
    return times


def test_steady_state_reaches_99_percent_of_the_ceiling() -> None:
    """Ten windows of back-to-back demand: >= 0.99 of requests/per, no window over the limit."""
    limit = RateLimit(300, 5.0)
    times = _greedy(RateState(limit, 0.0), 3000)
    assert most_in_window(times, limit.per) <= 300
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved / limit.ceiling >= 0.99


@settings(max_examples=200, deadline=None)
@example(requests=1, per=1.3596015647419608, steps=[(0.0, None, False)] * 4)  # float rounding
@given(
    requests=st.integers(1, 40),
    per=st.floats(0.1, 5.0),
    steps=st.lists(
        st.tuples(
            st.floats(0.0, 2.0),  # time until the next thing happens
            st.one_of(st.none(), st.floats(0.0, 3.0)),  # None: a send; else a 429's Retry-After
            st.booleans(),  # whether that 429 carried Retry-After at all
        ),
        max_size=120,
    ),
)
def test_ceiling_and_pause_hold_for_any_schedule(
    requests: int, per: float, steps: list[tuple[float, float | None, bool]]
) -> None:
    """Any mix of sends and 429s: no window of ``per`` over the limit, nothing sent in a pause."""
    limit = RateLimit(requests, per, margin=0.0)
    state = RateState(limit, 0.0)
    now, sends, pauses = 0.0, [], []
    for gap, retry_after, has_header in steps:
        now += gap
        if retry_after is None:
            now = state.next_send(now)
            state.sent(now)
            sends.append(now)
        else:
            state.throttled(now, retry_after if has_header else None)
            pauses.append((now, state.paused_until))
        assert FLOOR_SHARE * state.top - 1e-9 <= state.rate <= state.top + 1e-9
    assert most_in_window(sends, per) <= requests
    for began, until in pauses:
        assert not any(began < moment < until for moment in sends)


def _simulate(limit: RateLimit, server: tuple[int, float], seconds: float) -> tuple[int, int]:
    """A sender with endless demand against a sliding-window server: (accepted, refused)."""
    allowed, window = server
    state, arrivals = RateState(limit, 0.0), deque[float]()
    now, accepted, refused = 0.0, 0, 0
    while now < seconds:
        now = state.next_send(now)
        state.sent(now)
        while arrivals and arrivals[0] <= now - window:
            arrivals.popleft()
        if len(arrivals) < allowed:
            arrivals.append(now)
            accepted += 1
        else:
            refused += 1
            state.throttled(now, math.ceil(arrivals[0] + window - now))
    return accepted, refused


def test_aimd_learns_a_lower_limit_with_few_429s() -> None:
    """Against half the configured rate for a minute: under 1 % 429s, >= 0.9 of the real limit."""
    limit = RateLimit(200, 1.0)
    accepted, refused = _simulate(limit, (100, 1.0), 60.0)
    assert refused / (accepted + refused) < 0.01
    assert accepted / 60.0 >= 0.9 * 100


def test_one_mode_enum_names_every_limiters_mode() -> None:
    """The state machine's modes, LimiterStats.mode and the progress line share LimiterMode, and
    no other module spells a mode's name (the shared limiter and the display once did)."""
    assert Mode is LimiterMode
    stats = LimiterStats(ceiling=1.0, rate=1.0, paused_until=0.0, throttled=0, total_wait=0.0)
    assert stats.mode is None
    named = attrs.evolve(stats, mode="redis down")  # a limiter that reports the name still fits
    assert named.mode is LimiterMode.REDIS_DOWN
    assert str(named) == "rate 1.0/s of 1/s (redis down), 0 x 429"
    assert LimiterMode.PAUSED not in FLOWING
    assert {LimiterMode.STEADY, LimiterMode.RECOVERING} <= FLOWING
    # "closed" is also the Redis link's state (LinkState), another machine: not looked for.
    names = {mode.value for mode in LimiterMode} - {LimiterMode.CLOSED.value}
    package = Path(masking_async.__file__).parent
    for path in package.rglob("*.py"):
        if path.name == "_limiter_protocol.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                raise AssertionError(f"{path}:{node.lineno} spells the mode {node.value!r}")
