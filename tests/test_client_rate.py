"""The rate limiter against the emulator's real limit: the ceiling, the pause, AIMD, the pool.

The documented 300 per 5 s is scaled to keep each test to a few seconds; the emulator counts on
the real clock (``SystemClock``), as the client does. Send times come from the client's hooks,
arrival times and statuses from the emulator's request log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from masking_async import (
    CallTrace,
    ClientOptions,
    Event,
    MaskingClient,
    PoolTimeout,
    RateLimit,
    RequestSent,
    RequestThrottled,
    RetryPolicy,
    Timeouts,
    TransportError,
)
from masking_async.client._ratestate import most_in_window
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    Faults,
    SystemClock,
)
from masking_async.emulator import RateLimit as ServerLimit
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.phones import party_pairs


def _client(emu: Emulator, options: ClientOptions, events: list[Event]) -> MaskingClient:
    return MaskingClient(
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        base_url=emu.base_url,
        options=options,
        hooks=[events.append],
    )


async def _create_all(
    client: MaskingClient, count: int, concurrency: int, traces: list[CallTrace] | None = None
) -> list[BaseException]:
    """Create ``count`` sessions from ``concurrency`` workers; return the errors raised."""
    pairs = iter(party_pairs(count))
    errors: list[BaseException] = []

    async def worker() -> None:
        for first, second in pairs:
            trace = CallTrace()
            try:
                await client.create_session(
                    {"first_party": first, "second_party": second}, trace=trace
                )
            except Exception as exc:
                errors.append(exc)
            if traces is not None:
                traces.append(trace)

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    return errors


async def test_at_the_servers_limit_no_429_no_window_over_and_98_percent(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """Client limit = server limit: 0 x 429, no window over the limit, >= 0.98 of it reached."""
    requests, per = 200, 4.0  # 50 a second, as 300 per 5 s is 60
    emu = await masking_emulator_factory(
        EmulatorConfig(rate_limit=ServerLimit(requests, per)), clock=SystemClock()
    )
    options = ClientOptions(rate_limit=RateLimit(requests, per, margin=0.04), max_connections=16)
    events: list[Event] = []
    async with _client(emu, options, events) as client:
        errors = await _create_all(client, 260, 16)
    assert errors == []
    log = emu.request_log.entries()
    assert [e.status for e in log] == [201] * 260  # not one 429, nothing sent twice
    sent = [e.at for e in events if isinstance(e, RequestSent)]
    assert most_in_window(sent, per) <= requests
    arrivals = [e.at for e in log]
    assert most_in_window(arrivals, per) <= requests
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert achieved / (requests / per) >= 0.98


@pytest.mark.parametrize("concurrency", [16, 64, 200])
async def test_server_allows_half_no_failures_few_429s_and_90_percent(
    masking_emulator_factory: EmulatorFactory, concurrency: int
) -> None:
    """Server limit half the client's: 0 failed, < 5 % 429s, >= 0.9 of the limit after 2 s."""
    emu = await masking_emulator_factory(
        EmulatorConfig(rate_limit=ServerLimit(100, 1.0)), clock=SystemClock()
    )
    options = ClientOptions(rate_limit=RateLimit(200, 1.0), max_connections=concurrency)
    events: list[Event] = []
    async with _client(emu, options, events) as client:
        errors = await _create_all(client, 300, concurrency)
        stats = client.rate_stats
    assert errors == []
    log = emu.request_log.entries()
    refused = sum(e.status == 429 for e in log)
    assert sum(e.status == 201 for e in log) == 300
    assert refused / len(log) < 0.05
    start = log[0].at
    settled = [e.at for e in log if e.status == 201 and e.at >= start + 2.0]
    assert len(settled) / (settled[-1] - (start + 2.0)) >= 0.9 * 100
    assert 0.85 * 100 <= stats.rate <= 100  # the learned rate, visible on the client
    assert stats.throttled == refused
    assert stats.ceiling == 200


async def test_a_429_holds_every_queued_caller_until_retry_after(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """100 callers queued in the limiter when a 429 comes: none is sent before Retry-After."""
    # The server allows 5 per 0.6 s, so the 6th create (sent at ~0.25 s) gets Retry-After 1;
    # without the pause the queued callers would go every 50 ms from then on.
    emu = await masking_emulator_factory(
        EmulatorConfig(rate_limit=ServerLimit(5, 0.6)), clock=SystemClock()
    )
    options = ClientOptions(rate_limit=RateLimit(10, 0.5, margin=0.0), max_connections=200)
    events: list[Event] = []
    async with _client(emu, options, events) as client:
        with anyio.move_on_after(1.6):
            await _create_all(client, 200, 106)
    throttles = [e for e in events if isinstance(e, RequestThrottled)]
    assert throttles
    first = throttles[0]
    assert first.retry_after == 1.0
    sends = [e.at for e in events if isinstance(e, RequestSent)]
    before = [moment for moment in sends if moment <= first.at]
    assert len(before) <= 7  # the 429'd one and those already in flight: the rest were queued
    assert all(moment >= first.at + 1.0 for moment in sends[len(before) :])
    assert len(sends) > len(before)  # and they did go, once the pause was over


def _slow(latency: float) -> EmulatorConfig:
    return EmulatorConfig(rate_limit=None, faults=Faults(latency=latency))


async def _run_against_small_pool(
    factory: EmulatorFactory, timeouts: Timeouts, work: Callable[[MaskingClient], Awaitable[None]]
) -> Emulator:
    emu = await factory(_slow(0.05), clock=SystemClock())
    options = ClientOptions(
        rate_limit=RateLimit.off(),
        timeouts=timeouts,
        max_connections=4,
        retry=RetryPolicy(wait=False),
    )
    async with _client(emu, options, []) as client:
        await work(client)
    return emu


async def test_waiting_for_the_pool_is_not_an_unknown_outcome(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """100 creates on 4 connections, connect timeout far below the queue: each sent exactly once."""
    traces: list[CallTrace] = []

    async def work(client: MaskingClient) -> None:
        assert await _create_all(client, 100, 100, traces) == []

    emu = await _run_against_small_pool(
        masking_emulator_factory, Timeouts(connect=0.2, pool=None), work
    )
    log = emu.request_log.entries()
    assert [(e.method, e.status) for e in log] == [("POST", 201)] * 100  # no lookup, no re-send
    assert not any(t.adopted or t.attempts != 1 for t in traces)


async def test_pool_timeout_is_raised_before_sending_and_never_looked_up(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """A pool timeout raises PoolTimeout, not a TransportError: none of those reached the server."""
    errors: list[BaseException] = []

    async def work(client: MaskingClient) -> None:
        errors.extend(await _create_all(client, 40, 40))

    emu = await _run_against_small_pool(masking_emulator_factory, Timeouts(pool=0.12), work)
    log = emu.request_log.entries()
    assert errors
    assert all(isinstance(e, PoolTimeout) and not isinstance(e, TransportError) for e in errors)
    assert [(e.method, e.status) for e in log] == [("POST", 201)] * (40 - len(errors))
