"""The client's legacy create and expire against the real emulator: checked before sending, and
exactly once under the emulator's faults, as ``create_session`` is."""

from __future__ import annotations

from itertools import islice

import anyio
import pytest

from masking_async import (
    CallTrace,
    ClientOptions,
    LegacySession,
    MaskingClient,
    RateLimit,
    RequestValidationError,
    RetryPolicy,
    Timeouts,
)
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    Faults,
    SystemClock,
)
from masking_async.emulator.faults import FaultRule
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.phones import party_numbers, party_pairs
from masking_async.rules import LEGACY_DEFAULTS, MAX_URL_LENGTH

A, B = islice(party_numbers("US", start=900), 2)
TIMEOUT = 0.6
#: Fast retries and a short conclusive wait, so faults cost little real time.
OPTIONS = ClientOptions(
    rate_limit=RateLimit.off(),
    retry=RetryPolicy(attempts=6, wait=False, budget_floor=500),
    timeouts=Timeouts(total=TIMEOUT, connect=TIMEOUT),
    adopt_settle=0.2,
)


def _client(emulator: Emulator, options: ClientOptions = OPTIONS) -> MaskingClient:
    return MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=options
    )


def _sessions(emulator: Emulator) -> list[str]:
    state = emulator.store.account(DEFAULT_AUTH_ID)
    assert state is not None
    return list(state.sessions)


async def test_create_read_and_expire_through_the_legacy_door(masking_emulator):
    """The legacy create answers id and number; the session reads back through the current API
    with the legacy defaults; the legacy expire ends it. Each call goes to the legacy path."""
    async with _client(masking_emulator) as client:
        made = await client.create_legacy_session({"first_party": A, "second_party": B})
        assert isinstance(made, LegacySession)
        assert made.message == "Session created"
        assert made.api_id is not None
        assert made.virtual_number is not None
        assert made.virtual_number.startswith("+")
        session = await client.get_session(made.session_uuid)
        assert session.virtual_number == made.virtual_number
        assert (session.duration, session.call_time_limit) == (
            LEGACY_DEFAULTS["session_expiry"],
            LEGACY_DEFAULTS["call_time_limit"],
        )
        await client.expire_legacy_session(made.session_uuid)
        assert (await client.get_session(made.session_uuid)).status == "expired"
    paths = [(entry.method, entry.path) for entry in masking_emulator.request_log]
    legacy = f"/v1/Account/{DEFAULT_AUTH_ID}/Session/"
    assert paths[0] == ("POST", legacy)
    assert paths[2] == ("DELETE", f"{legacy}{made.session_uuid}/")


async def test_the_clamp_happens_before_sending(masking_emulator):
    """A call_time_limit outside the range leaves the client already at its nearest bound."""
    async with _client(masking_emulator) as client:
        made = await client.create_legacy_session(
            {"first_party": A, "second_party": B, "call_time_limit": 1}
        )
        assert (await client.get_session(made.session_uuid)).call_time_limit == 60


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"first_party": A, "second_party": B, "session_expiry": 59}, "session_expiry"),
        ({"first_party": A, "second_party": B, "session_expiry": 86401}, "session_expiry"),
        (
            {
                "first_party": A,
                "second_party": B,
                "recording_callback_url": "https://e.com/" + "a" * MAX_URL_LENGTH,
            },
            "recording_callback_url",
        ),
        ({"first_party": A}, "second_party"),
        ({"first_party": A, "second_party": B, "ring_timeout": 30}, "ring_timeout"),
    ],
)
async def test_a_broken_rule_is_refused_before_anything_is_sent(masking_emulator, params, field):
    """RequestValidationError names the field; the emulator's log stays empty."""
    async with _client(masking_emulator) as client:
        with pytest.raises(RequestValidationError, match=field):
            await client.create_legacy_session(params)
        with pytest.raises(RequestValidationError, match="session_uuid"):
            await client.expire_legacy_session("../Masking/Session")
    assert list(masking_emulator.request_log) == []


FAULTS = {
    "error after the create was applied": FaultRule(
        kind="error", operation="create", phase="after", status=500, count=1
    ),
    "drop after the create was applied": FaultRule(
        kind="drop", operation="create", phase="after", count=1
    ),
    "drop before": FaultRule(kind="drop", operation="create", phase="before", count=1),
    "429": FaultRule(kind="throttle", operation="create", count=2, retry_after=0),
    "stall past the timeout": FaultRule(
        kind="stall", operation="create", phase="before", count=1, stall_seconds=TIMEOUT + 0.1
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_one_create_is_one_session_whatever_the_fault(
    masking_emulator_factory: EmulatorFactory, name: str
) -> None:
    """Under each fault the legacy create makes exactly one session: a create that was applied
    is found and adopted, one that was not is sent again, a 429 is waited out."""
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=None), clock=SystemClock())
    emulator.add_fault(FAULTS[name])
    trace = CallTrace()
    async with _client(emulator) as client:
        made = await client.create_legacy_session(
            {"first_party": A, "second_party": B, "record": True}, trace=trace
        )
        session = await client.get_session(made.session_uuid)
    assert _sessions(emulator) == [made.session_uuid]
    assert session.record is True
    applied_first = name.endswith("applied") or name.startswith("stall")
    assert trace.adopted == applied_first
    if applied_first:
        assert made.message is None  # adopted: no answer was read
    if name == "429":
        assert trace.throttled == 2


@pytest.mark.parametrize("phase", ["after", "before"])
async def test_many_legacy_creates_under_random_faults_make_each_session_once(
    masking_emulator_factory: EmulatorFactory, phase: str
) -> None:
    """Drops and 500s on a fifth and more of the creates: N legacy creates, N sessions."""
    faults = Faults(drop_rate=0.2, error_rate=0.15, phase=phase, operations={"create"}, seed=5)
    emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, faults=faults), clock=SystemClock()
    )
    options = ClientOptions(
        rate_limit=RateLimit.off(),
        retry=RetryPolicy(attempts=12, wait=False, budget_floor=500),
        timeouts=Timeouts(total=1.0, connect=1.0),
        adopt_settle=0.1,
    )
    traces = [CallTrace() for _ in range(30)]
    made: list[str] = []
    async with _client(emulator, options) as client:

        async def create(pair: tuple[str, str], trace: CallTrace) -> None:
            answer = await client.create_legacy_session(
                {"first_party": pair[0], "second_party": pair[1]}, trace=trace
            )
            made.append(answer.session_uuid)

        async with anyio.create_task_group() as group:
            for pair, trace in zip(party_pairs(30), traces, strict=True):
                group.start_soon(create, pair, trace)
    assert len(made) == len(set(made)) == len(_sessions(emulator)) == 30
    assert any(t.attempts > 1 or t.adopted for t in traces)
    assert any(t.adopted for t in traces) == (phase == "after")


async def test_the_legacy_and_current_creates_never_adopt_each_others_session(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """A current create of the pair already answered; then a legacy create of the same pair is
    dropped after it was applied: the lookup adopts the new session, not the returned one."""
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=None), clock=SystemClock())
    async with _client(emulator) as client:
        current = await client.create_session({"first_party": A, "second_party": B})
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
        trace = CallTrace()
        legacy = await client.create_legacy_session(
            {"first_party": A, "second_party": B}, trace=trace
        )
    assert trace.adopted
    assert legacy.session_uuid != current.session_uuid
    assert sorted(_sessions(emulator)) == sorted([current.session_uuid, legacy.session_uuid])
