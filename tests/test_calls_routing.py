"""Calls through the emulator: routing per caller type, PIN prompts, expiry, limits, recording,
call-me sessions and the session state calls leave behind, all on a ManualClock."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from masking_async.callbacks import CallbackServer, RecordingEvent, SessionEvent
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    CallsConfig,
    Emulator,
    EmulatorConfig,
    LegState,
    ManualClock,
    Phone,
    Tariff,
)
from masking_async.emulator.calls.call import LEG_TRANSITIONS, Leg, TransitionError
from masking_async.emulator.calls.session_calls import session_status
from masking_async.emulator.render import session_body

FIRST, SECOND, STRANGER = "+12125550101", "+12125550102", "+12125550199"
START = ManualClock().now()


def clock_of(emu: Emulator) -> ManualClock:
    assert isinstance(emu.clock, ManualClock)
    return emu.clock


async def make_session(emu: Emulator, rx: CallbackServer, **params: Any) -> tuple[str, str]:
    """Create a session through the store's create (arguments as the API checks them)."""
    params = {
        "first_party": FIRST,
        "second_party": SECOND,
        "callback_url": rx.url,
        "recording_callback_url": rx.url,
        **params,
    }
    record = emu.store.create(DEFAULT_AUTH_ID, params)
    return record.uuid, record.virtual_number


async def finish(emu: Emulator, seconds: float = 1000) -> None:
    clock_of(emu).advance(seconds)
    await emu.calls.settle()


def names(rx: CallbackServer) -> list[str]:
    return [e.event_name for e in sorted(rx.events, key=lambda e: e.sequence_number)]


def status(emu: Emulator, uuid: str) -> str:
    """The status the API would show for the session."""
    return session_status(emu.store.get(DEFAULT_AUTH_ID, uuid))


def offset(event: SessionEvent | RecordingEvent) -> float:
    assert event.event_timestamp is not None
    return event.event_timestamp.timestamp() - START


CONNECTED = [
    "SessionFirstPartyAnswer",
    "SessionSecondPartyRing",
    "SessionSecondPartyAnswer",
    "SessionFirstPartyHangup",
    "SessionSecondPartyHangup",
    "SessionPartiesHangup",
]


@pytest.mark.parametrize(("caller", "callee"), [(FIRST, SECOND), (SECOND, FIRST)])
async def test_a_party_reaches_the_other_party(
    masking_emulator: Emulator, callback_server: CallbackServer, caller: str, callee: str
) -> None:
    """Either party dialling the virtual number is answered and the other party is rung."""
    uuid, number = await make_session(masking_emulator, callback_server)
    call = masking_emulator.calls.call(caller, number, caller_phone=Phone(hangup_after=40))
    assert status(masking_emulator, uuid) == "in-progress"
    await finish(masking_emulator)
    assert names(callback_server) == CONNECTED
    ring = next(e for e in callback_server.events if e.event_name == "SessionSecondPartyRing")
    assert (ring.from_number, ring.to_number, ring.virtual_number) == (caller, callee, number)
    assert [leg.number for leg in call.legs] == [caller, callee]
    assert call.legs[1].caller_id == number  # the dialled party sees the virtual number
    assert [leg.state for leg in call.legs] == [LegState.COMPLETED, LegState.COMPLETED]
    assert call.outcome == "completed"
    assert status(masking_emulator, uuid) == "active"
    interaction = masking_emulator.store.get(DEFAULT_AUTH_ID, uuid).calls
    assert interaction is not None
    role = "first_party" if caller == FIRST else "second_party"
    assert call.legs[0].call_uuid in str(interaction.interactions[0][f"{role}_resource_url"])


async def test_unknown_caller_hears_unknown_caller_play(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """A number that is no party hears unknown_caller_play and reaches nobody."""
    play = "https://example.com/unknown.mp3"
    uuid, number = await make_session(masking_emulator, callback_server, unknown_caller_play=play)
    call = masking_emulator.calls.call(STRANGER, number)
    await finish(masking_emulator, 10)
    assert call.outcome == "unknown-caller"
    assert call.played == [{"to": STRANGER, "url": play}]
    assert call.session_uuid is None
    assert callback_server.events == []
    assert masking_emulator.store.get(DEFAULT_AUTH_ID, uuid).calls is None


async def test_party_dialling_another_number_is_not_routed(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """Routing is by caller and virtual number: a party calling a number it has no session on is
    an unknown caller there."""
    _, number = await make_session(masking_emulator, callback_server)
    other = next(n for n in masking_emulator.config.pool.numbers if n != number)
    call = masking_emulator.calls.call(FIRST, other)
    assert call.outcome == "unknown-caller"


PIN_SESSION = {
    "is_pin_authentication_required": True,
    "first_party_pin": "1234",
    "second_party_pin": "4321",
    "pin_prompt_play": "https://example.com/pin.mp3",
    "incorrect_pin_play": "https://example.com/wrong.mp3",
}


@pytest.mark.parametrize(
    ("pin", "role", "dialled"), [("1234", "first_party", SECOND), ("4321", "second_party", FIRST)]
)
async def test_pin_connects_an_unknown_caller_as_that_party(
    masking_emulator: Emulator, callback_server: CallbackServer, pin: str, role: str, dialled: str
) -> None:
    """An unknown caller keying a party's PIN is connected to the other party."""
    await make_session(masking_emulator, callback_server, **PIN_SESSION)
    number = masking_emulator.store.state(DEFAULT_AUTH_ID).all[0].virtual_number
    call = masking_emulator.calls.call(
        STRANGER, number, caller_phone=Phone(digits=[pin], dtmf_seconds=4, hangup_after=30)
    )
    await finish(masking_emulator)
    assert names(callback_server)[:3] == [
        "SessionFirstPartyAnswer",
        "SessionPinAuthenticationStatus",
        "SessionSecondPartyRing",
    ]
    pin_event = callback_server.events[1]
    assert isinstance(pin_event, SessionEvent)
    assert (pin_event.pin_authentication_status, pin_event.pin_retry_counter) == ("success", 0)
    assert offset(pin_event) == 4
    assert call.legs[0].role == role
    assert call.legs[1].number == dialled
    assert call.outcome == "completed"
    assert call.played == [{"to": STRANGER, "url": "https://example.com/pin.mp3"}]


async def test_wrong_pins_are_retried_then_the_caller_is_dropped(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """pin_retry retries after pin_retry_wait, each wrong PIN is reported and played
    incorrect_pin_play; after the last the caller's leg ends and nobody is rung."""
    uuid, number = await make_session(
        masking_emulator, callback_server, **PIN_SESSION, pin_retry=2, pin_retry_wait=7
    )
    call = masking_emulator.calls.call(
        STRANGER, number, caller_phone=Phone(digits=["0000", "1111", "2222"], dtmf_seconds=3)
    )
    await finish(masking_emulator)
    pins = [e for e in callback_server.events if e.event_name == "SessionPinAuthenticationStatus"]
    assert [(e.pin_authentication_status, e.pin_retry_counter) for e in pins] == [
        ("failed", 1),
        ("failed", 2),
        ("failed", 3),
    ]
    assert [offset(e) for e in pins] == [3, 13, 23]
    assert names(callback_server)[-2:] == ["SessionFirstPartyHangup", "SessionPartiesHangup"]
    assert call.outcome == "pin-failed"
    assert call.pin_attempts == ["0000", "1111", "2222"]
    assert call.played.count({"to": STRANGER, "url": "https://example.com/wrong.mp3"}) == 3
    assert len(call.legs) == 1
    record = masking_emulator.store.get(DEFAULT_AUTH_ID, uuid)
    assert record.calls is not None
    assert (record.calls.count, record.calls.interactions) == (1, [])


async def test_a_wrong_pin_then_the_right_one_connects(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """A retry with the right PIN succeeds, its counter telling the wrong tries before it."""
    _, number = await make_session(masking_emulator, callback_server, **PIN_SESSION)
    call = masking_emulator.calls.call(
        STRANGER, number, caller_phone=Phone(digits=["9999", "4321"], hangup_after=60)
    )
    await finish(masking_emulator)
    pins = [e for e in callback_server.events if e.event_name == "SessionPinAuthenticationStatus"]
    assert [(e.pin_authentication_status, e.pin_retry_counter) for e in pins] == [
        ("failed", 1),
        ("success", 1),
    ]
    assert call.outcome == "completed"
    assert call.legs[1].number == FIRST


async def test_a_known_caller_is_an_authorized_caller(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """With PIN authentication on, a party calling from its own number needs no PIN."""
    _, number = await make_session(masking_emulator, callback_server, **PIN_SESSION)
    masking_emulator.calls.call(FIRST, number, caller_phone=Phone(hangup_after=20))
    await finish(masking_emulator)
    event = callback_server.events[1]
    assert isinstance(event, SessionEvent)
    assert event.pin_authentication_status == "AuthorizedCaller"
    assert names(callback_server)[2] == "SessionSecondPartyRing"


@pytest.mark.parametrize(("digits", "outcome"), [("1234", "completed"), ("4321", "pin-failed")])
async def test_forced_pin_makes_a_known_caller_key_its_own_pin(
    masking_emulator: Emulator, callback_server: CallbackServer, digits: str, outcome: str
) -> None:
    """force_pin_authentication: a registered caller must key its own PIN, not the other's."""
    _, number = await make_session(
        masking_emulator, callback_server, **PIN_SESSION, force_pin_authentication=True, pin_retry=0
    )
    call = masking_emulator.calls.call(
        FIRST, number, caller_phone=Phone(digits=[digits], hangup_after=20)
    )
    await finish(masking_emulator)
    assert call.outcome == outcome


async def test_an_expired_session_routes_nowhere(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """After expiry a party's call reaches nobody; the session only reported its timeout."""
    uuid, number = await make_session(masking_emulator, callback_server, session_expiry=600)
    clock_of(masking_emulator).advance(601)
    call = masking_emulator.calls.call(FIRST, number)
    await finish(masking_emulator, 10)
    assert call.outcome == "unknown-caller"
    assert names(callback_server) == ["SessionTimeout"]
    assert status(masking_emulator, uuid) == "expired"


async def test_expiry_during_a_call_does_not_cut_it(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """A session expiring mid-call sends SessionTimeout at that moment, in sequence between the
    call's events, and the call runs to its end and is counted."""
    uuid, number = await make_session(masking_emulator, callback_server, session_expiry=60)
    call = masking_emulator.calls.call(FIRST, number, caller_phone=Phone(hangup_after=100))
    await finish(masking_emulator, 500)  # expiry (60) and the call's end (100) in one step
    assert names(callback_server) == [*CONNECTED[:3], "SessionTimeout", *CONNECTED[3:]]
    timeout = next(e for e in callback_server.events if e.event_name == "SessionTimeout")
    assert offset(timeout) == 60
    assert call.outcome == "completed"
    record = masking_emulator.store.get(DEFAULT_AUTH_ID, uuid)
    assert record.status == "expired"
    assert record.calls is not None
    assert record.calls.count == 2


async def test_initiate_call_to_first_party_rings_the_first_party(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """A call-me session rings the first party at creation and bridges the second on answer."""
    masking_emulator.calls.set_phone(FIRST, Phone(answer_after=4, hangup_after=30))
    masking_emulator.calls.set_phone(SECOND, Phone(answer_after=6))
    uuid, _ = await make_session(
        masking_emulator, callback_server, initiate_call_to_first_party=True
    )
    assert status(masking_emulator, uuid) == "in-progress"
    await finish(masking_emulator)
    assert names(callback_server) == CONNECTED
    by_name = {e.event_name: e for e in callback_server.events}
    assert offset(by_name["SessionFirstPartyAnswer"]) == 4
    assert offset(by_name["SessionSecondPartyAnswer"]) == 10
    assert offset(by_name["SessionPartiesHangup"]) == 34
    call = masking_emulator.calls.calls[0]
    assert (call.kind, call.outcome, call.legs[0].number) == ("call-me", "completed", FIRST)
    assert {leg.caller_id for leg in call.legs} == {call.virtual_number}


async def test_initiate_call_to_first_party_not_answered(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """A first party who never answers is given up at ring_timeout; nobody else is rung."""
    masking_emulator.calls.set_phone(FIRST, Phone(answer_after=None))
    await make_session(
        masking_emulator, callback_server, initiate_call_to_first_party=True, ring_timeout=25
    )
    await finish(masking_emulator)
    assert names(callback_server) == ["SessionFirstPartyHangup", "SessionPartiesHangup"]
    assert offset(callback_server.events[0]) == 25
    assert masking_emulator.calls.calls[0].outcome == "no-answer"


@pytest.mark.parametrize(
    ("callee", "caller", "outcome", "end", "causes"),
    [
        (Phone(busy=True), Phone(), "busy", 0, ["Busy Line", "Normal Hangup"]),
        (Phone(answer_after=None), Phone(), "no-answer", 30, ["No Answer", "Normal Hangup"]),
        (
            Phone(answer_after=20),
            Phone(hangup_after=5),
            "abandoned",
            5,
            ["Normal Hangup", "Canceled"],
        ),
        (
            Phone(answer_after=2),
            Phone(),
            "completed",
            90,
            ["Max Call Duration Reached", "Normal Hangup"],
        ),
        (Phone(answer_after=2, hangup_after=10), Phone(), "completed", 12, ["Normal Hangup"] * 2),
    ],
)
async def test_how_a_call_ends(
    masking_emulator: Emulator,
    callback_server: CallbackServer,
    callee: Phone,
    caller: Phone,
    outcome: str,
    end: float,
    causes: list[str],
) -> None:
    """Busy, ring_timeout, a caller hanging up while it rings, call_time_limit and a callee
    hanging up each end the call when and how they should."""
    _, number = await make_session(
        masking_emulator, callback_server, ring_timeout=30, call_time_limit=90
    )
    call = masking_emulator.calls.call(FIRST, number, caller_phone=caller, callee_phone=callee)
    await finish(masking_emulator)
    assert call.outcome == outcome
    assert call.ended_at is not None
    assert call.ended_at - call.placed_at == end
    hangups = [e for e in callback_server.events if e.event_name.endswith("PartyHangup")]
    assert [e.hangup_cause for e in hangups if isinstance(e, SessionEvent)] == causes
    assert all(leg.ended_at is not None for leg in call.legs)


@pytest.mark.parametrize(
    ("record", "fails", "expected"),
    [
        (False, False, []),
        (True, False, ["SessionRecordingInitiated", "SessionRecordingCompleted"]),
        (True, True, ["SessionRecordingFailed"]),
    ],
)
async def test_recording_only_when_both_answered_and_record_is_on(
    masking_emulator: Emulator,
    callback_server: CallbackServer,
    record: bool,
    fails: bool,
    expected: list[str],
) -> None:
    """Recording starts when the second party answers, only with record on; its interaction
    carries the recording URL."""
    uuid, number = await make_session(masking_emulator, callback_server, record=record)
    masking_emulator.calls.call(
        FIRST, number, caller_phone=Phone(hangup_after=50), recording_fails=fails
    )
    await finish(masking_emulator)
    recordings = [e for e in callback_server.events if isinstance(e, RecordingEvent)]
    assert [e.event_name for e in recordings] == expected
    calls = masking_emulator.store.get(DEFAULT_AUTH_ID, uuid).calls
    assert calls is not None
    url = calls.interactions[0]["recording_resource_url"]
    if expected[:1] == ["SessionRecordingInitiated"]:
        done = recordings[1]
        assert (done.recording_duration, done.recording_format) == (48, ".mp3")
        assert url == done.recording_resource_url
        assert offset(recordings[0]) == 2
    else:
        assert url is None


async def test_a_caller_who_hangs_up_while_it_rings_is_never_recorded(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """With record on, a call the second party never answered has no recording."""
    _, number = await make_session(masking_emulator, callback_server, record=True)
    masking_emulator.calls.call(
        FIRST, number, caller_phone=Phone(hangup_after=3), callee_phone=Phone(answer_after=10)
    )
    await finish(masking_emulator)
    assert not [e for e in callback_server.events if isinstance(e, RecordingEvent)]


async def test_totals_follow_the_tariff(
    masking_emulator_factory: Callable[..., Any], callback_server: CallbackServer
) -> None:
    """total_call_count counts legs, billed duration rounds each answered leg up to the
    increment, amounts follow the tariff, last_interaction_time is the last call's end."""
    tariff = Tariff(per_minute=Decimal("0.0120"), increment=30, session_fee=Decimal("0.05"))
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(tariff=tariff))
    )
    uuid, number = await make_session(emu, callback_server)
    emu.calls.call(FIRST, number, caller_phone=Phone(hangup_after=70))  # legs: 70 s and 68 s
    await finish(emu, 100)
    emu.calls.call(SECOND, number, callee_phone=Phone(busy=True))  # one leg 0 s, one never up
    await finish(emu, 10)
    body = session_body(emu.store.get(DEFAULT_AUTH_ID, uuid))
    assert body["total_call_count"] == 4
    assert body["total_call_billed_duration"] == 90 + 90
    assert body["total_call_amount"] == "0.03600"
    assert body["amount"] == "0.05000"
    assert body["total_session_amount"] == "0.08600"
    assert body["last_interaction_time"] == "2024-02-01 06:01:40 +0000 UTC"
    assert len(body["interaction"]) == 2
    hangup = next(e for e in callback_server.events if e.event_name == "SessionPartiesHangup")
    assert isinstance(hangup, SessionEvent)
    assert (hangup.billed_duration, hangup.amount, hangup.duration) == (180, Decimal("0.036"), 70)


def test_leg_state_machine_allows_exactly_its_table() -> None:
    """Every transition in the table is allowed and every other one is refused."""
    for source, target in itertools.product(LegState, LegState):
        leg = Leg("uuid", FIRST, None, state=source)
        if target in LEG_TRANSITIONS[source]:
            leg.move(target, 1.0, "normal")
            assert leg.state is target
        else:
            with pytest.raises(TransitionError):
                leg.move(target, 1.0, "normal")


async def test_retrieve_list_and_status_filter_see_a_call(
    masking_emulator: Emulator, callback_server: CallbackServer, emulator_http: Any
) -> None:
    """Through the API: in-progress while the call is up (and still listed as active, not
    expired), the interaction and totals once it ended."""
    created = await emulator_http.create(first_party=FIRST, second_party=SECOND)
    uuid, number = created["session_uuid"], created["virtual_number"]
    masking_emulator.calls.call(FIRST, number, caller_phone=Phone(hangup_after=30))
    clock_of(masking_emulator).advance(10)
    _, body, _ = await emulator_http.call("GET", uuid)
    assert body["response"]["status"] == "in-progress"
    _, page = await emulator_http.list(status="active")
    assert [(o["session_uuid"], o["status"]) for o in page["response"]["objects"]] == [
        (uuid, "in-progress")
    ]
    _, page = await emulator_http.list(status="expired")
    assert page["response"]["objects"] == []
    clock_of(masking_emulator).advance(30)
    _, body, _ = await emulator_http.call("GET", uuid)
    session = body["response"]
    assert session["status"] == "active"
    assert session["total_call_count"] == 2
    assert session["last_interaction_time"] == "2024-02-01 06:00:30 +0000 UTC"
    assert set(session["interaction"][0]) == {
        "first_party_resource_url",
        "second_party_resource_url",
        "recording_resource_url",
    }


async def test_the_control_plane_keeps_a_bounded_history(
    masking_emulator_factory: Callable[..., Any], callback_server: CallbackServer
) -> None:
    """CallsConfig.history bounds the calls and deliveries kept; the oldest go first."""
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(history=2))
    )
    _, number = await make_session(emu, callback_server)
    calls = [emu.calls.call(STRANGER, number) for _ in range(3)]
    assert list(emu.calls.calls) == calls[1:]
    assert emu.calls.find(calls[0].call_id) is None
    assert emu.calls.find(calls[2].call_id) is calls[2]
    emu.calls.call(FIRST, number, caller_phone=Phone(hangup_after=5))
    await finish(emu, 10)
    assert [d.event for d in emu.calls.deliveries()] == [
        "SessionSecondPartyHangup",
        "SessionPartiesHangup",
    ]


async def test_play_urls_reach_each_party_before_connecting(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """The caller hears its role's play URL before the other is dialled; the dialled party
    hears its own when it answers."""
    _, number = await make_session(
        masking_emulator,
        callback_server,
        first_party_play_url="https://example.com/first.mp3",
        second_party_play_url="https://example.com/second.wav",
    )
    call = masking_emulator.calls.call(SECOND, number, caller_phone=Phone(hangup_after=9))
    assert call.played == [
        {"to": SECOND, "url": "https://example.com/second.wav"},
        {"to": FIRST, "url": "https://example.com/first.mp3"},
    ]


async def test_forgetting_an_account_drops_its_unfinished_calls(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """When the store forgets an account (a reset), its calls stop where they were: no more
    steps, no more callbacks, outcome ``reset``."""
    _, number = await make_session(masking_emulator, callback_server)
    call = masking_emulator.calls.call(FIRST, number, caller_phone=Phone(hangup_after=30))
    await masking_emulator.calls.settle()
    sent = len(callback_server.events)
    masking_emulator.calls.forget(DEFAULT_AUTH_ID)
    await finish(masking_emulator, 100)
    assert (call.done, call.outcome) == (True, "reset")
    assert len(callback_server.events) == sent
