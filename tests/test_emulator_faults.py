"""Fault injection: 500s, 429s, drops, stalls and latency, before or after the change."""

from __future__ import annotations

import asyncio
import time
from itertools import islice

import aiohttp
import pytest

from masking_async.emulator import DEFAULT_AUTH_ID, Emulator, EmulatorConfig, Faults
from masking_async.phones import party_numbers

A, B = islice(party_numbers("US", start=1300), 2)
PAIR = {"first_party": A, "second_party": B}


@pytest.fixture
def faulty(masking_emulator_factory, emulator_http_for):
    """Start an emulator with the given faults and return raw HTTP to it."""

    async def start(**faults):
        emulator = await masking_emulator_factory(
            EmulatorConfig(rate_limit=None, faults=Faults(**faults))
        )
        return emulator_http_for(emulator)

    return start


def _sessions(emulator: Emulator) -> int:
    return emulator.store.list(DEFAULT_AUTH_ID, {}).total_count


@pytest.mark.parametrize(
    ("kind", "status", "phase", "created"),
    [
        ("error_rate", 500, "before", 0),
        ("error_rate", 500, "after", 1),
        ("throttle_rate", 429, "before", 0),
        ("throttle_rate", 429, "after", 0),  # a 429 is never applied, whatever the phase
    ],
)
async def test_error_answers_before_or_after_the_change(faulty, kind, status, phase, created):
    """An injected 500 after the change keeps the change; an injected 429 never applies it."""
    api = await faulty(**{kind: 1.0}, phase=phase)
    got, body, headers = await api.call("POST", json=PAIR)
    assert got == status
    assert set(body) == {"api_id", "error"}
    assert _sessions(api.emulator) == created
    if status == 429:
        assert int(headers["Retry-After"]) >= 1
    assert api.emulator.request_log.entries()[0].fault == kind.removesuffix("_rate")


@pytest.mark.parametrize(("phase", "created"), [("before", 0), ("after", 1)])
async def test_dropped_connection_before_or_after_the_change(faulty, phase, created):
    """A drop closes the connection with no answer (aiohttp: ServerDisconnectedError)."""
    api = await faulty(drop_rate=1.0, phase=phase)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", json=PAIR)
    assert _sessions(api.emulator) == created
    entry = api.emulator.request_log.entries()[0]
    assert (entry.status, entry.fault) == (0, "drop")


@pytest.mark.parametrize(("phase", "created"), [("before", 0), ("after", 1)])
async def test_stall_outlasts_a_client_timeout(faulty, phase, created):
    """A stall holds the answer past the client's timeout; after-phase, the create happened."""
    api = await faulty(stall_rate=1.0, stall_seconds=5.0, phase=phase)
    with pytest.raises(asyncio.TimeoutError):
        await api.call("POST", json=PAIR, timeout=aiohttp.ClientTimeout(total=0.2))
    await asyncio.sleep(0.05)  # let the server record the arrival
    assert _sessions(api.emulator) == created


async def test_stall_shorter_than_the_timeout_answers_late(faulty):
    """A short stall delays a normal answer by at least stall_seconds."""
    api = await faulty(stall_rate=1.0, stall_seconds=0.15)
    started = time.perf_counter()
    status, _, _ = await api.call("POST", json=PAIR)
    assert status == 201
    assert time.perf_counter() - started >= 0.15


async def test_stopping_the_emulator_ends_stalls_at_once(emulator_http_for):
    """Shutdown does not wait out a long stall."""
    emulator = Emulator(EmulatorConfig(faults=Faults(stall_rate=1.0, stall_seconds=60)))
    async with emulator:
        api = emulator_http_for(emulator)
        request = asyncio.ensure_future(api.call("GET"))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
    assert time.perf_counter() - started < 5
    # answered early or cut off, but not left hanging
    await asyncio.wait_for(asyncio.gather(request, return_exceptions=True), 1.0)


async def test_latency_and_jitter_delay_every_answer(faulty):
    """Fixed latency plus jitter is added to each answer."""
    api = await faulty(latency=0.05, jitter=0.02, seed=1)
    for _ in range(3):
        started = time.perf_counter()
        assert (await api.call("GET"))[0] == 200
        assert time.perf_counter() - started >= 0.05


async def test_faults_can_be_restricted_to_some_operations(faulty):
    """With operations={"create"}, only creates fail."""
    api = await faulty(error_rate=1.0, operations={"create"})
    assert (await api.call("GET"))[0] == 200
    assert (await api.call("POST", json=PAIR))[0] == 500


async def test_faults_repeat_for_a_seed(faulty):
    """Two emulators with the same seed fail the same requests; another seed differs."""

    async def statuses(seed):
        api = await faulty(error_rate=0.3, throttle_rate=0.2, seed=seed)
        return [(await api.call("GET"))[0] for _ in range(30)]

    first = await statuses(7)
    assert first == await statuses(7)
    assert first != await statuses(8)
    assert {200, 429, 500} <= set(first)


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.7, "drop_rate": 0.7},
        {"error_rate": 1.5},
        {"latency": -1.0},
        {"phase": "during"},
        {"operations": {"create", "teleport"}},
    ],
)
def test_faults_config_refuses_nonsense(faults):
    """Rates outside 0-1 or adding past 1, negative times, unknown phases or operations fail."""
    with pytest.raises(ValueError):  # noqa: PT011 - the messages differ per rule
        Faults(**faults)
