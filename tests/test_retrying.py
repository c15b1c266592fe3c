"""The one retry primitive: its backoff formula, its loop's bounds, its hook, Retry-After."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import pytest

from masking_async.retrying import Backoff, RetryDetails, parse_retry_after, retry_context


class _Flaky(Exception):
    pass


async def _fail_always(context_kwargs: dict[str, object]) -> tuple[int, list[RetryDetails]]:
    """Run a loop whose body always fails; the attempts made and what the hook saw."""
    seen: list[RetryDetails] = []
    made = 0

    async def loop() -> None:
        nonlocal made
        async for attempt in retry_context(hook=seen.append, **context_kwargs):  # type: ignore[arg-type]
            made += 1
            assert attempt.number == made
            try:
                raise _Flaky(made)
            except _Flaky as error:
                if not attempt.retry(error):
                    raise

    with pytest.raises(_Flaky):
        await loop()
    return made, seen


def test_the_ceiling_grows_exponentially_up_to_the_maximum() -> None:
    """initial * multiplier**(n-1), capped at maximum, and no overflow for a huge n."""
    backoff = Backoff(0.25, 10.0, 2.0)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 6, 7, 10_000)] == [
        0.25,
        0.5,
        1.0,
        8.0,
        10.0,
        10.0,
    ]


def test_full_jitter_stays_within_its_bounds() -> None:
    """Every wait lies in [floor, max(floor, ceiling)], and the draws spread over that range."""
    backoff, rng = Backoff(0.1, 2.0), random.Random(7)
    waits = [backoff.delay(3, rng) for _ in range(2000)]
    assert all(0.0 <= wait <= 0.4 for wait in waits)
    assert min(waits) < 0.02
    assert max(waits) > 0.38
    floored = [backoff.delay(3, rng, floor=0.3) for _ in range(500)]
    assert all(0.3 <= wait <= 0.4 for wait in floored)
    assert backoff.delay(1, rng, floor=5.0) == 5.0  # a floor above the ceiling wins


def test_without_jitter_the_wait_is_the_ceiling() -> None:
    """jitter=False: a predictable schedule (callback delivery, the Redis link's probes)."""
    backoff = Backoff(1.0, 60.0, 2.0, jitter=False)
    assert [backoff.delay(n, random.Random()) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


async def test_attempts_are_bounded_and_numbered() -> None:
    """attempts=4: four attempts, numbered 1-4, then the last error is raised; three waits."""
    made, seen = await _fail_always({"backoff": Backoff(0.01, 0.01), "attempts": 4, "wait": False})
    assert made == 4
    assert [(d.attempt, d.failures, str(d.error)) for d in seen] == [
        (1, 1, "1"),
        (2, 2, "2"),
        (3, 3, "3"),
    ]


async def test_total_time_is_bounded() -> None:
    """timeout=0.25 with waits of about 0.1 s: it gives up within the time, after 2-4 tries."""
    started = time.monotonic()
    made, _ = await _fail_always(
        {"backoff": Backoff(0.1, 0.1, jitter=False), "timeout": 0.25, "attempts": None}
    )
    assert time.monotonic() - started < 0.25 + 0.1
    assert 2 <= made <= 3


async def test_the_hook_sees_each_wait_before_it_is_waited() -> None:
    """The hook is called once per retry, with the wait about to be slept, and it is slept."""
    backoff = Backoff(0.05, 0.05, jitter=False)
    started = time.monotonic()
    made, seen = await _fail_always({"backoff": backoff, "attempts": 3})
    assert made == 3
    assert [d.wait for d in seen] == [0.05, 0.05]
    assert seen[1].elapsed >= 0.05
    assert time.monotonic() - started >= 0.1


async def test_waiting_off_retries_at_once_with_every_bound_kept() -> None:
    """wait=False: no sleep at all (a 60 s backoff takes no time), attempts still bounded."""
    started = time.monotonic()
    made, seen = await _fail_always({"backoff": Backoff(60.0, 60.0), "attempts": 5, "wait": False})
    assert made == 5
    assert all(d.wait == 0.0 for d in seen)
    assert time.monotonic() - started < 1.0


async def test_uncounted_failures_spend_no_attempt_and_a_given_wait_is_kept() -> None:
    """retry(counts=False, wait=0): goes again at once without spending one of the attempts."""
    made = 0
    async for attempt in retry_context(Backoff(30.0, 30.0), attempts=2):
        made += 1
        if made <= 5:
            assert attempt.retry(_Flaky(), counts=False, wait=0.0)
        elif made == 6:
            assert attempt.retry(_Flaky(), wait=0.0)
            assert attempt.failures == 1
        else:
            assert not attempt.retry(_Flaky())  # the second counted failure: attempts spent
    assert made == 7


async def test_a_body_that_succeeds_ends_the_loop() -> None:
    """No retry asked for: one attempt and the loop ends (as when the body returns)."""
    numbers = [attempt.number async for attempt in retry_context(Backoff(1.0, 1.0))]
    assert numbers == [1]


def test_retry_after_in_seconds_or_an_http_date() -> None:
    """Delta-seconds, or an HTTP date measured from now; past dates are 0; junk is unread."""
    now = 1_700_000_000.0
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 0.5 ", now=now) == 0.5
    assert parse_retry_after(formatdate(now + 120, usegmt=True), now=now) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0
    assert parse_retry_after(formatdate(time.time() + 30, usegmt=True)) == pytest.approx(
        30, abs=1.5
    )
    for junk in (None, "", "soon", "nan", "1e9"):
        assert parse_retry_after(junk, now=now) is None
    assert parse_retry_after("-3", now=now) == 0.0
