"""The Lua script's copy of the AIMD rule agrees with the Python one (``_limiter_state.RateState``).

The shared limiter's rule must run inside Redis, atomically with the window it guards, so it is
written a second time in Lua (``_redis_script.py`` says why); its constants are not copied but
passed from Python (``limit_arguments``). These tests set one state on both sides, let each apply
the same event (time passing over quiet periods, or a 429), and compare the rates that result.
Times sit mid-period (quiet periods of 10 s), so the milliseconds between reading Redis' clock
and running the script cannot change the outcome.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import pytest
import redis

from masking_async.client import RateLimit
from masking_async.client._limiter_state import FLOOR_SHARE, Mode, RateState
from masking_async.client._redis_limiter import limit_arguments
from masking_async.client._redis_script import SCRIPT
from masking_async.client._redis_server import RedisServer

LIMIT = RateLimit(100, 10.0, margin=0.05, decrease=0.5, increase=0.1, quiet=10.0)
TOP = 100 / 10.05
MICRO = 1_000_000
#: A moment on the Python side's clock; the Lua side uses Redis TIME.
T0 = 10_000.0


@pytest.fixture
def lua(redis_server: RedisServer) -> Iterator[tuple[redis.Redis, list[str]]]:
    client = redis.Redis(port=redis_server.port)
    account = uuid.uuid4().hex
    yield client, [f"aimd:{{{account}}}:log", f"aimd:{{{account}}}:state"]
    client.close()


def _redis_now(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * MICRO + int(micros)


def _set_state(client: redis.Redis, keys: list[str], **fields: float) -> None:
    state = {"rate": TOP, "paused_until": 0, "pace": 0, "epoch": 0, "climb_at": 0}
    state |= {"hold_until": 0, "refused": TOP, **fields}
    client.hset(keys[1], mapping={name: repr(float(v)) for name, v in state.items()})


def _run(client: redis.Redis, keys: list[str], op: str, pause_us: int = 0) -> float:
    script = client.register_script(SCRIPT)
    raw = script(keys=keys, args=[op, "m1", 0, 0, pause_us, *limit_arguments(LIMIT)])
    return float(raw[3])  # the answer's rate, requests per second


@pytest.mark.parametrize(
    ("rate", "refused", "climbs", "held"),
    [
        (2.0, 8.0, 1, 10),  # one climb of increase * ceiling
        (2.0, 8.0, 8, 10),  # climbs stopped at HOLD_SHARE of the refused rate
        (2.0, 8.0, 12, 10),  # past the hold: on up to the top
        (2.0, 4.0, 5, 2),  # two held climbs, then free ones
        (9.9, 9.0, 2, 0),  # reaches the top and stays there
        (0.2, 0.3, 3, 3),  # held below the rate it already has: the rate is kept
    ],
)
def test_climbs_after_a_pause_agree(
    lua: tuple[redis.Redis, list[str]], rate: float, refused: float, climbs: int, held: int
) -> None:
    """After ``climbs`` quiet periods (the first ``held`` under the hold), both rates are equal."""
    client, keys = lua
    quiet = LIMIT.quiet_period
    now = _redis_now(client)
    climb_at = now - (climbs - 0.5) * quiet * MICRO
    hold_until = climb_at + held * quiet * MICRO
    _set_state(client, keys, rate=rate, refused=refused, climb_at=climb_at, hold_until=hold_until)
    from_lua = _run(client, keys, "reserve")

    state = RateState(LIMIT, T0)
    state.mode = Mode.RECOVERING
    state.rate = rate
    state._refused_rate = refused
    state._climb_at = T0 - (climbs - 0.5) * quiet
    state._hold_until = state._climb_at + held * quiet
    state.advance(T0)

    assert from_lua == pytest.approx(state.rate, rel=1e-9)


@pytest.mark.parametrize(
    ("rate", "sends"),
    [
        (TOP, 50),  # decrease times what was just sent (5/s)
        (3.0, 50),  # sent faster than the rate: the rate is what is decreased
        (TOP, 1),  # almost nothing sent: the floor
        (TOP, 100),  # a full window
    ],
)
def test_a_429_decreases_alike(lua: tuple[redis.Redis, list[str]], rate: float, sends: int) -> None:
    """A 429 after ``sends`` sends in the last window leaves both sides at the same rate."""
    client, keys = lua
    now = _redis_now(client)
    times = [now - (j + 1) * 0.05 * MICRO for j in range(sends)]  # all within the last 10 s
    client.zadd(keys[0], {f"s{j}": moment for j, moment in enumerate(times)})
    _set_state(client, keys, rate=rate)
    from_lua = _run(client, keys, "throttle", pause_us=MICRO)

    state = RateState(LIMIT, T0)
    state.rate = rate
    for j in reversed(range(sends)):
        state.sent(T0 - (j + 1) * 0.05)
    state.rate = rate  # sent() moves only the pacer, never the rate; set it again for clarity
    state.throttled(T0, 1.0)

    assert from_lua == pytest.approx(state.rate, rel=1e-9)
    assert state.rate >= FLOOR_SHARE * TOP
    assert math.isfinite(from_lua)
