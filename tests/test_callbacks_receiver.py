"""The receiving side: events parsed from any payload shape, and the aiohttp receiver that
verifies, hands over, and answers so that a retrying sender never loses an event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import masking_async.callbacks as callbacks
from masking_async.callbacks import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_MA_HEADER,
    CallbackEvent,
    CallbackFormatError,
    CallbackServer,
    NonceCache,
    RecordingEvent,
    SessionEvent,
    compute_signature,
    parse_event,
)
from masking_async.models import Interaction

TOKEN = "receiver-token"
HANGUP = {
    "EventName": "SessionFirstPartyHangup",
    "EventTimestamp": "2024-02-01 06:28:15 +0000 UTC",
    "SessionUUID": "c28b77d4-21e7-43bd-9447-04bfee92e651",
    "From": "14155550100",
    "To": "14155550111",
    "VirtualNumber": "912269947011",
    "PinAuthenticationStatus": "",
    "PinRetryCounter": "",
    "Amount": "0.00500",
    "BilledDuration": "60",
    "Duration": "42",
    "PlivoHangupCause": "Normal Hangup",
    "PlivoHangupCauseCode": "4000",
    "SequenceNumber": "5",
}


def test_public_surface_is_sorted_and_importable() -> None:
    """masking_async.callbacks exports what it names, constants first, then sorted."""
    assert all(hasattr(callbacks, name) for name in callbacks.__all__)
    assert callbacks.__all__ == sorted(callbacks.__all__, key=lambda n: (not n.isupper(), n))


def test_a_status_event_from_strings() -> None:
    """String-typed values become numbers, amounts, times and E.164 numbers; empty is None."""
    event = parse_event(HANGUP)
    assert isinstance(event, SessionEvent)
    assert event.sequence_number == 5
    assert event.event_timestamp == datetime(2024, 2, 1, 6, 28, 15, tzinfo=timezone.utc)
    assert (event.from_number, event.virtual_number) == ("+14155550100", "+912269947011")
    assert (event.amount, event.billed_duration, event.duration) == (Decimal("0.005"), 60, 42)
    assert (event.hangup_cause, event.hangup_cause_code) == ("Normal Hangup", 4000)
    assert (event.pin_authentication_status, event.pin_retry_counter) == (None, None)


@pytest.mark.parametrize(
    "payload",
    [
        {**HANGUP, "SequenceNumber": 5, "Duration": 42, "PinRetryCounter": None},
        {key: [value] for key, value in HANGUP.items()},
        {**HANGUP, "PinRetryCounter": "null", "NewAttribute": "kept"},
    ],
)
def test_json_and_form_shapes_read_the_same(payload: dict[str, Any]) -> None:
    """JSON types, form lists and "null" all read as the string form does; unknown keys are kept."""
    event = parse_event(payload)
    assert event == parse_event(HANGUP)
    if "NewAttribute" in payload:
        assert event.extra == {"NewAttribute": "kept"}


def test_a_recording_event() -> None:
    """Recording events get their own class, with the interaction object parsed from JSON."""
    event = parse_event(
        {
            "EventName": "SessionRecordingCompleted",
            "SessionUUID": "u",
            "SequenceNumber": "7",
            "RecordingDuration": "48",
            "RecordingStartTime": "2024-02-01 06:00:02 +0000 UTC",
            "RecordingFormat": ".mp3",
            "interaction": json.dumps({"first_party_resource_url": "/Call/a/"}),
        }
    )
    assert isinstance(event, RecordingEvent)
    assert event.recording_duration == 48
    assert event.interaction == Interaction(first_party_resource_url="/Call/a/")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"SessionUUID": "u"}, "no EventName"),
        ({"EventName": "SessionTimeout", "SessionUUID": "u"}, "sequence_number"),
        (
            {"EventName": "SessionTimeout", "SessionUUID": "u", "SequenceNumber": "x"},
            "expected int",
        ),
    ],
)
def test_unreadable_payloads_name_the_problem(payload: dict[str, str], message: str) -> None:
    """A payload that is no event raises CallbackFormatError saying what is wrong."""
    with pytest.raises(CallbackFormatError, match=message):
        parse_event(payload)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def signed_post(
    http: aiohttp.ClientSession, url: str, params: dict[str, str], nonce: str, **kwargs: Any
) -> Any:
    signature = compute_signature("POST", url, params, nonce, TOKEN)
    headers = {SIGNATURE_HEADER: signature, NONCE_HEADER: nonce, **kwargs.pop("headers", {})}
    return http.post(url, data=params, headers=headers, **kwargs)


async def test_verified_events_reach_the_handler(http: aiohttp.ClientSession) -> None:
    """GET query, POST form and POST JSON are all verified, parsed and handed over."""
    async with CallbackServer(auth_token=TOKEN) as server:
        async with signed_post(http, server.url, HANGUP, "1") as answer:
            assert answer.status == 200
        headers = {
            SIGNATURE_HEADER: compute_signature("GET", server.url, HANGUP, "2", TOKEN),
            NONCE_HEADER: "2",
        }
        async with http.get(server.url, params=HANGUP, headers=headers) as answer:
            assert answer.status == 200
        body = {**HANGUP, "SequenceNumber": 6}
        headers = {
            SIGNATURE_MA_HEADER: compute_signature("POST", server.url, body, "3", TOKEN),
            NONCE_HEADER: "3",
        }
        async with http.post(server.url, json=body, headers=headers) as answer:
            assert answer.status == 200
    assert [e.sequence_number for e in server.events] == [5, 5, 6]


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda h: h.pop(SIGNATURE_HEADER), 403),
        (lambda h: h.pop(NONCE_HEADER), 403),
        (lambda h: h.update({SIGNATURE_HEADER: "AAAA"}), 403),
    ],
)
async def test_unsigned_or_forged_requests_are_refused(
    http: aiohttp.ClientSession, mutate: Callable[[dict[str, str]], Any], status: int
) -> None:
    """No signature, no nonce or a wrong signature: 403, and the handler never runs."""
    async with CallbackServer(auth_token=TOKEN) as server:
        headers = {
            SIGNATURE_HEADER: compute_signature("POST", server.url, HANGUP, "n", TOKEN),
            NONCE_HEADER: "n",
        }
        mutate(headers)
        async with http.post(server.url, data=HANGUP, headers=headers) as answer:
            assert answer.status == status
    assert server.events == []


async def test_replays_and_non_events(http: aiohttp.ClientSession) -> None:
    """With a nonce cache a replayed request is refused; a signed payload that is no event is
    a 400 (resending would not help)."""
    async with CallbackServer(auth_token=TOKEN, nonces=NonceCache()) as server:
        for expected in (200, 403):
            async with signed_post(http, server.url, HANGUP, "same") as answer:
                assert answer.status == expected
        async with signed_post(http, server.url, {"hello": "world"}, "other") as answer:
            assert answer.status == 400
            assert "EventName" in (await answer.json())["message"]
    assert len(server.events) == 1


async def test_a_failing_handler_gets_the_event_again(http: aiohttp.ClientSession) -> None:
    """A handler that raises answers 500 and frees the nonce: the identical resend is handled."""
    calls: list[CallbackEvent] = []

    async def handler(event: CallbackEvent) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise ConnectionError("database unavailable")

    async with CallbackServer(auth_token=TOKEN, handler=handler, nonces=NonceCache()) as server:
        async with signed_post(http, server.url, HANGUP, "n1") as answer:
            assert answer.status == 500
            assert "retry" in (await answer.json())["message"]
        async with signed_post(http, server.url, HANGUP, "n1") as answer:
            assert answer.status == 200
    assert len(calls) == 2
    assert len(server.events) == 1


async def test_a_slow_handler_is_cut_with_503(http: aiohttp.ClientSession) -> None:
    """A handler past handler_timeout is cancelled and the sender is told to retry."""

    async def slow(event: CallbackEvent) -> None:
        await asyncio.sleep(30)

    server = CallbackServer(auth_token=TOKEN, handler=slow, handler_timeout=0.05)
    async with server, signed_post(http, server.url, HANGUP, "n") as answer:
        assert answer.status == 503
    assert server.events == []


async def test_public_url_is_what_is_verified(http: aiohttp.ClientSession) -> None:
    """Behind a proxy the signature covers the public URL the sender was given."""
    public = "https://hooks.example.test/masking"
    async with CallbackServer(auth_token=[TOKEN], public_url=public, path="/cb") as server:
        signature = compute_signature("POST", public + "/cb?x=1", HANGUP, "n", TOKEN)
        headers = {SIGNATURE_HEADER: signature, NONCE_HEADER: "n"}
        async with http.post(server.url + "?x=1", data=HANGUP, headers=headers) as answer:
            assert answer.status == 200
    assert len(server.events) == 1


def test_an_empty_token_is_refused() -> None:
    """Verification needs a real token: an empty one is a clear error, not an open door."""
    with pytest.raises(ValueError, match="auth_token"):
        CallbackServer(auth_token="")
