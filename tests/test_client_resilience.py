"""The client's rate limit, Retry-After handling and create adoption, measured at the emulator."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from masking_async import (
    CallTrace,
    ClientOptions,
    MaskingClient,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from masking_async.client import Response
from masking_async.client._limiter_state import most_in_window
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    EmulatorConfig,
    Faults,
    SystemClock,
)
from masking_async.emulator import ServerRateLimit as ServerLimit
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.phones import party_pairs


async def test_rate_limit_never_exceeded_in_any_window(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """50 concurrent calls under a 20/s limit: no window of 1 s at the server sees more than 20."""
    emu = await masking_emulator_factory(
        EmulatorConfig(rate_limit=ServerLimit(20, 1.0)), clock=SystemClock()
    )
    # Real clock: a margin of 0.1 s absorbs the scheduling jitter of a busy machine.
    options = ClientOptions(rate_limit=RateLimit(20, 1.0, margin=0.1), retry=RetryPolicy.none())
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emu.base_url, options=options
    ) as client:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(client.list_sessions)
        elapsed = time.monotonic() - started
    arrivals = [entry.at for entry in emu.request_log]
    assert len(arrivals) == 50
    assert all(entry.status == 200 for entry in emu.request_log)  # not one 429
    assert most_in_window(arrivals, 1.0) <= 20
    assert 50 / elapsed > 0.6 * 20  # close to the allowed rate, with room for a noisy machine


class _Throttling:
    """A transport that answers 429 (Retry-After 0.3 s) once, then 200, noting send times."""

    def __init__(self) -> None:
        self.sent: list[float] = []

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        self.sent.append(time.monotonic())
        if len(self.sent) == 1:
            return Response(429, {"Retry-After": "0.3"}, b'{"api_id": "a", "error": "slow down"}')
        await anyio.sleep(0.01)
        return Response(
            200,
            {},
            b'{"api_id": "b", "response": {"meta": {"limit": 20, "offset": 0,'
            b' "total_count": 0}, "objects": []}}',
        )

    async def aclose(self) -> None:
        pass


async def test_retry_after_is_honoured_by_every_call() -> None:
    """After a 429 with Retry-After, neither the retry nor other calls go out before it ends."""
    transport = _Throttling()
    options = ClientOptions(rate_limit=RateLimit.off())
    async with (
        MaskingClient("MAXXXXXXXXXXXXXXXXXX", "t", transport=transport, options=options) as c,
        anyio.create_task_group() as group,
    ):
        group.start_soon(c.list_sessions)  # throttled, then retried
        await anyio.sleep(0.05)
        group.start_soon(c.list_sessions)  # another call, held back by the shared pause
    first, *later = transport.sent
    assert all(moment - first >= 0.29 for moment in later)


@pytest.mark.parametrize("phase", ["after", "before"])
async def test_creates_under_faults_make_each_session_once(
    masking_emulator_factory: EmulatorFactory, phase: str
) -> None:
    """Drops and 500s on creates, before or after the commit: N creates give exactly N sessions."""
    faults = Faults(drop_rate=0.2, error_rate=0.15, phase=phase, operations={"create"}, seed=11)
    emu = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, faults=faults), clock=SystemClock()
    )
    options = ClientOptions(
        rate_limit=RateLimit.off(),
        retry=RetryPolicy(attempts=12, wait=False, budget_floor=500),
        timeouts=Timeouts(total=1.0, connect=1.0),
        adopt_settle=0.1,
    )
    traces = [CallTrace() for _ in range(40)]
    made: list[str] = []
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emu.base_url, options=options
    ) as client:

        async def create(pair: tuple[str, str], trace: CallTrace) -> None:
            session = await client.create_session(
                {"first_party": pair[0], "second_party": pair[1]}, trace=trace
            )
            made.append(session.session_uuid)

        async with anyio.create_task_group() as group:
            for pair, trace in zip(party_pairs(40), traces, strict=False):
                group.start_soon(create, pair, trace)
    state = emu.store.account(DEFAULT_AUTH_ID)
    assert state is not None
    assert len(made) == len(set(made)) == len(state.sessions) == 40
    assert any(t.attempts > 1 or t.adopted for t in traces)  # faults happened and were survived
    assert any(t.adopted for t in traces) == (phase == "after")
