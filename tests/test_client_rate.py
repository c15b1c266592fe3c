"""The rate limiter against the emulator's real limit: the ceiling, the pause, AIMD, the pool.

The limiter tests run on virtual time (``VirtualTime`` below): the emulator's ManualClock, moved
only while nothing is in flight, so a minute of sending takes a second and the figures do not
depend on how busy the machine is. The pool tests need real time (latency holds connections).
Arrival times and statuses come from the emulator's request log.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from masking_async import (
    AccountLimiter,
    CallTrace,
    ClientOptions,
    Event,
    LimiterStats,
    MaskingClient,
    PoolTimeout,
    RateLimit,
    RequestAnswered,
    RequestFailed,
    RequestSent,
    RetryPolicy,
    Timeouts,
    TransportError,
)
from masking_async.client._limiter_state import most_in_window
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    Faults,
    ManualClock,
    SystemClock,
)
from masking_async.emulator import ServerRateLimit as ServerLimit
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.phones import party_pairs


class VirtualTime:
    """Time shared by the client's limiter and the emulator that moves only when nothing is sent.

    The limiter sleeps on it; the emulator reads it (``ManualClock``). Time jumps to the earliest
    sleeper only while no request is in flight (counted by the client's hooks), so every request
    reaches the emulator at the very time the limiter let it go: a network without latency or
    jitter, and tests that give the same figures on a busy machine as on an idle one.
    """

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.in_flight = 0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        wake = anyio.Event()
        heapq.heappush(self._sleepers, (self.now() + seconds, next(self._order), wake))
        await wake.wait()

    def hook(self, event: Event) -> None:
        if isinstance(event, RequestSent):
            self.in_flight += 1
        elif isinstance(event, (RequestAnswered, RequestFailed)):
            self.in_flight -= 1

    async def drive(self) -> None:
        """Run until cancelled: wake the earliest sleeper whenever nothing is in flight."""
        while True:
            if self.in_flight or not self._sleepers:
                await anyio.sleep(0.0002)  # real time: let requests be answered
                continue
            deadline, _, wake = heapq.heappop(self._sleepers)
            while self.now() < deadline:
                self.clock.advance(max(deadline - self.now(), math.ulp(deadline)))
            wake.set()
            await anyio.lowlevel.checkpoint()

    def limiter(self, limit: RateLimit) -> AccountLimiter:
        return AccountLimiter(limit, clock=self.now, sleep=self.sleep)


def _client(
    emu: Emulator,
    options: ClientOptions,
    events: list[Event],
    *,
    time: VirtualTime | None = None,
) -> MaskingClient:
    hooks: list[Callable[[Event], None]] = [events.append]
    if time is not None:
        hooks.append(time.hook)
    return MaskingClient(
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        base_url=emu.base_url,
        options=options,
        hooks=hooks,
        limiter=None if time is None else time.limiter(options.rate_limit),
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


async def _virtual_run(
    factory: EmulatorFactory,
    server: ServerLimit,
    options: ClientOptions,
    count: int,
    concurrency: int,
) -> tuple[Emulator, list[BaseException], LimiterStats]:
    """Create ``count`` sessions on virtual time against a server enforcing ``server``."""
    time = VirtualTime()
    emu = await factory(EmulatorConfig(rate_limit=server), clock=time.clock)
    async with _client(emu, options, [], time=time) as client, anyio.create_task_group() as group:
        group.start_soon(time.drive)
        errors = await _create_all(client, count, concurrency)
        stats = client.rate_stats
        group.cancel_scope.cancel()
    return emu, errors, stats


async def test_at_the_servers_limit_no_429_no_window_over_and_98_percent(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """Client limit = server limit, 300/5 s: 0 x 429, no window over 300, >= 0.98 of it reached."""
    limit = RateLimit()  # the documented 300 per 5 s, margin included
    emu, errors, _ = await _virtual_run(
        masking_emulator_factory, ServerLimit(300, 5.0), ClientOptions(rate_limit=limit), 900, 16
    )
    assert errors == []
    log = emu.request_log.entries()
    assert [e.status for e in log] == [201] * 900  # not one 429, nothing sent twice
    arrivals = [e.at for e in log]
    assert most_in_window(arrivals, 5.0) <= 300
    steady = [t for t in arrivals if t >= arrivals[0] + 5.0]  # after the first window
    achieved = len(steady) / (arrivals[-1] - arrivals[0] - 5.0)
    assert achieved / limit.ceiling >= 0.98


@pytest.mark.parametrize("concurrency", [16, 64, 200])
async def test_server_allows_half_no_failures_few_429s_and_90_percent(
    masking_emulator_factory: EmulatorFactory, concurrency: int
) -> None:
    """Server limit half the client's: 0 failed, < 5 % 429s, >= 0.9 of the limit after 2 s."""
    options = ClientOptions(rate_limit=RateLimit(200, 1.0), max_connections=concurrency)
    emu, errors, stats = await _virtual_run(
        masking_emulator_factory, ServerLimit(100, 1.0), options, 500, concurrency
    )
    assert errors == []
    log = emu.request_log.entries()
    refused = sum(e.status == 429 for e in log)
    assert sum(e.status == 201 for e in log) == 500
    assert refused / len(log) < 0.05
    settled = [e.at for e in log if e.status == 201 and e.at >= log[0].at + 2.0]
    assert len(settled) / (settled[-1] - (log[0].at + 2.0)) >= 0.9 * 100
    assert 0.85 * 100 <= stats.rate <= 100  # the learned rate, visible on the client
    assert stats.throttled == refused
    assert stats.ceiling == 200


async def test_a_429_holds_every_queued_caller_until_retry_after(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """100 callers queued in the limiter when a 429 comes: none is sent before Retry-After."""
    # The server allows 5 per 3 s, so the 6th create (sent at 0.25 s) gets Retry-After 3;
    # without the pause the queued callers would go every 50 ms from then on.
    options = ClientOptions(rate_limit=RateLimit(10, 0.5, margin=0.0), max_connections=200)
    emu, errors, stats = await _virtual_run(
        masking_emulator_factory, ServerLimit(5, 3.0), options, 106, 106
    )
    assert errors == []
    log = emu.request_log.entries()
    first = next(i for i, e in enumerate(log) if e.status == 429)
    assert first == 5  # the 6th; the 100 others were queued in the limiter
    assert all(e.at >= log[first].at + 3.0 for e in log[first + 1 :])
    assert stats.throttled >= 1


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
