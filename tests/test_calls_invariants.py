"""Invariants of any call, searched by hypothesis over scripts, session settings and callers:
legs end, the session is no longer in progress, totals add up, callbacks are numbered 1..n
in time order and every routed call ends with SessionPartiesHangup."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Account,
    CallEngine,
    CallsConfig,
    LegState,
    ManualClock,
    Phone,
    PoolConfig,
    Store,
)
from masking_async.emulator.calls.call import LEG_TRANSITIONS

FIRST, SECOND, STRANGER = "+12125550101", "+12125550102", "+12125550199"
FINAL = {state for state, targets in LEG_TRANSITIONS.items() if not targets}

seconds = st.integers(0, 200)
phones = st.builds(
    Phone,
    answer_after=st.none() | seconds,
    busy=st.booleans(),
    hangup_after=st.none() | seconds,
    digits=st.lists(st.sampled_from(["1234", "4321", "0000"]), max_size=3),
    dtmf_seconds=st.integers(0, 10),
)
sessions = st.fixed_dictionaries(
    {
        "session_expiry": st.integers(60, 600),
        "ring_timeout": st.integers(1, 120),
        "call_time_limit": st.integers(60, 400),
        "record": st.booleans(),
        "initiate_call_to_first_party": st.booleans(),
    },
    optional={
        "is_pin_authentication_required": st.just(True),
        "force_pin_authentication": st.booleans(),
        "pin_retry": st.integers(0, 3),
        "pin_retry_wait": st.integers(5, 10),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=sessions,
    calls=st.lists(
        st.tuples(
            st.sampled_from([FIRST, SECOND, STRANGER]), phones, phones, seconds, st.booleans()
        ),
        max_size=4,
    ),
    first_phone=phones,
)
def test_any_call_keeps_the_invariants(
    params: dict[str, Any], calls: list[tuple[str, Phone, Phone, int, bool]], first_phone: Phone
) -> None:
    """Whatever the scripts and settings, every call ends cleanly and the books balance."""
    clock = ManualClock()
    store = Store(clock, [Account(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN)], PoolConfig(), seed=1)
    engine = CallEngine(
        store, clock, CallsConfig(phones={FIRST: first_phone}), [DEFAULT_AUTH_ID], 1
    )
    if params.get("is_pin_authentication_required"):
        params = {**params, "first_party_pin": "1234", "second_party_pin": "4321"}
    record = store.create(
        DEFAULT_AUTH_ID,
        {
            "first_party": FIRST,
            "second_party": SECOND,
            "callback_url": "http://127.0.0.1:9/cb",
            "recording_callback_url": "http://127.0.0.1:9/rec",
            **params,
        },
    )
    for caller, caller_phone, callee_phone, wait, fails in calls:
        clock.advance(wait)
        engine.call(
            caller,
            record.virtual_number,
            caller_phone=caller_phone,
            callee_phone=callee_phone,
            recording_fails=fails,
        )
    clock.advance(100_000)
    store.state(DEFAULT_AUTH_ID)

    mine = [call for call in engine.calls if call.session_uuid == record.uuid]
    for call in engine.calls:
        assert call.done
        assert [s.at for s in call.steps] == sorted(s.at for s in call.steps)
        for leg in call.legs:
            assert leg.state in FINAL
            assert leg.ended_at is not None
            if leg.answered_at is not None:
                assert leg.state is LegState.COMPLETED
                assert leg.ended_at - leg.answered_at <= params["call_time_limit"]
    assert record.status == "expired"
    state = record.calls
    if not mine:
        assert state is None or state.count == 0
        return
    assert state is not None
    assert state.up == 0
    assert state.count == sum(len(call.legs) for call in mine)
    tariff = engine.config.tariff
    assert state.billed == sum(tariff.billed_seconds(leg.seconds) for c in mine for leg in c.legs)
    deliveries = [d for d in engine.deliveries() if d.session_uuid == record.uuid]
    assert [d.sequence for d in deliveries] == list(range(1, len(deliveries) + 1))
    assert [d.event_time for d in deliveries] == sorted(d.event_time for d in deliveries)
    names = Counter(d.event for d in deliveries)
    assert names["SessionPartiesHangup"] == len(mine)
    assert names["SessionTimeout"] == 1
    assert names["SessionFirstPartyHangup"] + names["SessionSecondPartyHangup"] == state.count
    assert names["SessionRecordingInitiated"] == names["SessionRecordingCompleted"]
    assert names["SessionRecordingInitiated"] + names["SessionRecordingFailed"] <= len(mine)
