"""Retry-After as seconds or an HTTP date, capped, on a 429 and on a 503, over loopback."""

from __future__ import annotations

import random
import time

import pytest

from masking_async import (
    ClientOptions,
    Event,
    MaskingClient,
    RateLimit,
    RequestRetried,
    RequestThrottled,
    RetryPolicy,
    ServerError,
)
from masking_async.client._retry import retry_delay
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    FaultRule,
    SystemClock,
)
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.load.cleanup import persist

#: A backoff far shorter than any Retry-After here: every wait measured is the server's.
TINY = RetryPolicy(initial=0.001, maximum=0.001)


async def _emulator(factory: EmulatorFactory, rule: FaultRule) -> Emulator:
    emulator = await factory(EmulatorConfig(rate_limit=None), clock=SystemClock())
    emulator.add_fault(rule)
    return emulator


def _client(emulator: Emulator, retry: RetryPolicy, events: list[Event]) -> MaskingClient:
    options = ClientOptions(rate_limit=RateLimit.off(), retry=retry)
    return MaskingClient(
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        base_url=emulator.base_url,
        options=options,
        hooks=[events.append],
    )


def _gap(emulator: Emulator) -> float:
    """Seconds between the first two requests' arrivals at the emulator."""
    first, second = (entry.at for entry in list(emulator.request_log)[:2])
    return second - first


async def test_a_503_with_retry_after_is_retried_no_sooner(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """A 503 saying Retry-After: 1 is retried after 1 s, not after the millisecond backoff."""
    rule = FaultRule(kind="error", operation="list", status=503, retry_after=1, count=1)
    emulator = await _emulator(masking_emulator_factory, rule)
    events: list[Event] = []
    async with _client(emulator, TINY, events) as client:
        await client.list_sessions()
    retried = [event for event in events if isinstance(event, RequestRetried)]
    assert [(event.error, event.delay) for event in retried] == [("ServerError", 1.0)]
    assert _gap(emulator) >= 0.95


async def test_a_503_with_an_http_date_waits_until_it_capped(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """A 503 whose Retry-After is a date an hour away: read as a date, waited only to the cap."""
    rule = FaultRule(
        kind="error",
        operation="list",
        status=503,
        retry_after=3600,
        retry_after_as="date",
        count=1,
    )
    emulator = await _emulator(masking_emulator_factory, rule)
    events: list[Event] = []
    retry = RetryPolicy(initial=0.001, maximum=0.001, retry_after_cap=0.3)
    async with _client(emulator, retry, events) as client:
        await client.list_sessions()
    retried = [event for event in events if isinstance(event, RequestRetried)]
    assert [event.delay for event in retried] == [0.3]
    assert _gap(emulator) >= 0.28


async def test_a_503_that_never_ends_keeps_its_retry_after_on_the_error(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """The ServerError of a 503 carries the Retry-After it was given, read from a date."""
    rule = FaultRule(
        kind="error", operation="list", status=503, retry_after=120, retry_after_as="date"
    )
    emulator = await _emulator(masking_emulator_factory, rule)
    async with _client(emulator, RetryPolicy.none(), []) as client:
        with pytest.raises(ServerError) as caught:
            await client.list_sessions()
    assert caught.value.retry_after == pytest.approx(120, abs=1.5)


async def test_a_429_with_an_http_date_pauses_until_it_capped(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """A 429 whose Retry-After is an HTTP date: the date is read (no longer taken for 1 s), the
    limiter pauses to the policy's cap, and the throttle spends no attempt."""
    rule = FaultRule(
        kind="throttle", operation="list", retry_after=3600, retry_after_as="date", count=1
    )
    emulator = await _emulator(masking_emulator_factory, rule)
    events: list[Event] = []
    retry = RetryPolicy(attempts=1, max_throttled=1, retry_after_cap=0.3)
    async with _client(emulator, retry, events) as client:
        await client.list_sessions()
    throttled = [event for event in events if isinstance(event, RequestThrottled)]
    assert len(throttled) == 1
    assert throttled[0].retry_after == pytest.approx(3600, abs=1.5)
    assert 0.28 <= _gap(emulator) < 0.9


def _server_error(retry_after: float | None) -> ServerError:
    return ServerError("busy", retry_after=retry_after, status=503)


def test_the_batch_engines_delay_has_the_same_floor() -> None:
    """retry_delay (the engine's timer) is the client's backoff, never under a 503's
    Retry-After, which is capped by the policy; a 429's is 0 (the limiter waits it out)."""
    policy, rng = RetryPolicy(initial=0.1, maximum=0.4, retry_after_cap=2.0), random.Random(3)
    plain = [retry_delay(policy, 3, _server_error(None), rng) for _ in range(200)]
    assert all(0.0 <= wait <= 0.4 for wait in plain)
    assert [retry_delay(policy, 1, _server_error(1.5), rng) for _ in range(3)] == [1.5] * 3
    assert retry_delay(policy, 1, _server_error(300.0), rng) == 2.0


async def test_the_load_cleanup_honours_a_503s_retry_after() -> None:
    """persist (the load test's cleanup) waits at least a 503's Retry-After before trying again."""
    calls: list[float] = []

    async def expire() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise _server_error(0.3)
        return "gone"

    assert await persist(expire, rng=random.Random(1), attempts=3) == "gone"
    assert calls[1] - calls[0] >= 0.29
