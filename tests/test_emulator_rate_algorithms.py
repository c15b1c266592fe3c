"""The three rate-limit algorithms: each one's bound holds for any schedule, and Retry-After
always leads to an accepted request."""

from __future__ import annotations

import argparse
from itertools import accumulate, islice

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from masking_async.cli import emulator as cli
from masking_async.emulator import EmulatorConfig, ServerRateLimit
from masking_async.emulator.server_limiter import FixedWindow, SlidingWindow, TokenBucket
from masking_async.phones import party_numbers

A, B = islice(party_numbers("US", start=1900), 2)
LIMIT = ServerRateLimit(5, 2.0)
#: Gaps between arrivals, in seconds: bursts (0) and pauses, on the manual clock.
SCHEDULES = st.lists(
    st.one_of(st.just(0.0), st.floats(0.0, 1.5, allow_nan=False)), min_size=1, max_size=80
).map(lambda gaps: list(accumulate(gaps)))


def _accepted(algorithm, arrivals):
    return [now for now in arrivals if algorithm.acquire("MA", now) is None]


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(SCHEDULES)
def test_sliding_window_never_exceeds_the_limit_in_any_window(arrivals):
    """Sliding: in every window of ``per`` seconds, at most ``requests`` are accepted."""
    accepted = _accepted(SlidingWindow(LIMIT), arrivals)
    for start in accepted:
        inside = [t for t in accepted if start <= t < start + LIMIT.per]
        assert len(inside) <= LIMIT.requests


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(SCHEDULES)
def test_fixed_window_bounds_each_aligned_window(arrivals):
    """Fixed: in every window [k*per, (k+1)*per), at most ``requests`` are accepted."""
    accepted = _accepted(FixedWindow(LIMIT), arrivals)
    for window in {int(t // LIMIT.per) for t in accepted}:
        inside = [t for t in accepted if int(t // LIMIT.per) == window]
        assert len(inside) <= LIMIT.requests


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(SCHEDULES)
def test_token_bucket_bounds_any_interval_by_burst_plus_rate(arrivals):
    """Token bucket: over any t seconds, at most requests * (1 + t / per) are accepted."""
    accepted = _accepted(TokenBucket(LIMIT), arrivals)
    rate = LIMIT.requests / LIMIT.per
    for i, start in enumerate(accepted):
        for j in range(i, len(accepted)):
            span = accepted[j] - start
            assert j - i + 1 <= LIMIT.requests + span * rate + 1e-9


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.sampled_from([SlidingWindow, FixedWindow, TokenBucket]), SCHEDULES)
# found by hypothesis: (t + 2) - 2 < t in floats, so a slot freed "exactly" was still taken
@example(SlidingWindow, [0.248405665441005] * 6)
def test_waiting_retry_after_is_always_enough(kind, arrivals):
    """After any refusal, a request sent Retry-After seconds later (nothing between) is accepted."""
    algorithm = kind(LIMIT)
    for now in arrivals:
        wait = algorithm.acquire("MA", now)
        if wait is not None:
            assert wait >= 1
            assert algorithm.acquire("MA", now + wait) is None
            return


def test_fixed_windows_let_twice_the_limit_through_across_a_boundary():
    """The weakness a client must survive: N at the end of a window and N at the next start."""
    fixed, sliding = FixedWindow(LIMIT), SlidingWindow(LIMIT)
    times = [1.9] * 5 + [2.0] * 5
    assert len(_accepted(fixed, times)) == 10
    assert len(_accepted(sliding, times)) == 5


def test_token_bucket_refills_one_token_per_interval():
    """After a full burst, one request is accepted every per / requests seconds."""
    bucket = TokenBucket(LIMIT)
    assert len(_accepted(bucket, [0.0] * 6)) == 5
    assert bucket.acquire("MA", 0.3) == 1  # 0.75 token short: wait a whole second
    assert bucket.acquire("MA", 0.4) is None  # one token after 2 s / 5
    assert bucket.acquire("MA", 0.4) is not None


@pytest.mark.parametrize("algorithm", ["sliding", "fixed", "token"])
async def test_each_algorithm_serves_http_with_429_and_retry_after(
    masking_emulator_factory, emulator_http_for, algorithm
):
    """Over HTTP, each algorithm refuses the 4th of 3 per 5 s with a 429 and Retry-After >= 1."""
    emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=ServerRateLimit(3, 5.0, algorithm=algorithm))
    )
    api = emulator_http_for(emulator)
    statuses = [(await api.call("GET"))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    _, body, headers = await api.call("GET")
    assert set(body) == {"api_id", "error"}
    emulator.clock.advance(int(headers["Retry-After"]))
    assert (await api.call("GET"))[0] == 200


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(["emulator", *argv])


@pytest.mark.parametrize(
    ("flag", "algorithm"), [("fixed", "fixed"), ("token-bucket", "token"), ("SLIDING", "sliding")]
)
def test_rate_algorithm_flag(flag, algorithm):
    """--rate-limit 300/5s --rate-algorithm X reaches the config (aliases accepted)."""
    config = cli.build_config(_args("--rate-limit", "300/5s", "--rate-algorithm", flag))
    assert config.rate_limit == ServerRateLimit(300, 5.0, algorithm=algorithm)


def test_unknown_rate_algorithm_is_a_usage_error(capsys):
    """An unknown algorithm stops argparse with the choices in the message."""
    with pytest.raises(SystemExit):
        _args("--rate-algorithm", "leaky")
    assert "sliding, fixed, token" in capsys.readouterr().err
