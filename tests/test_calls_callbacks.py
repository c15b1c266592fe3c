"""Callbacks the emulator sends: every event and attribute, in order, with the configured method,
signed, retried with backoff, recorded in the control plane, and only to allowed targets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio
from aiohttp import web
from plivo.utils.signature_v3 import validate_v3_signature

from masking_async.callbacks import (
    NONCE_HEADER,
    RECORDING_ATTRIBUTES,
    RECORDING_EVENTS,
    SIGNATURE_HEADER,
    SIGNATURE_MA_HEADER,
    STATUS_ATTRIBUTES,
    STATUS_EVENTS,
    CallbackServer,
    signature_base,
)
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    CallsConfig,
    DeliveryPolicy,
    Emulator,
    EmulatorConfig,
    ManualClock,
    Phone,
)
from masking_async.emulator.calls.delivery import target_allowed

FIRST, SECOND = "+12125550101", "+12125550102"
FAST = DeliveryPolicy(attempts=4, backoff=0.01, multiplier=2.0, timeout=5.0)


@attrs.define
class Seen:
    method: str
    headers: dict[str, str]
    url: str
    params: dict[str, str]


@attrs.define
class RawReceiver:
    """A plain aiohttp server that records requests and answers from a script of statuses."""

    url: str
    seen: list[Seen]
    answers: list[int]


@pytest_asyncio.fixture
async def raw_receiver() -> AsyncIterator[RawReceiver]:
    """Record every request; answer the statuses queued in ``answers`` first, then 200."""
    seen: list[Seen] = []
    answers: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        params = dict(request.query) if request.method == "GET" else dict(await request.post())
        seen.append(Seen(request.method, dict(request.headers), str(request.url), params))  # type: ignore[arg-type]
        return web.Response(status=answers.pop(0) if answers else 200, text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield RawReceiver(f"http://127.0.0.1:{port}/hooks", seen, answers)
    finally:
        await runner.cleanup()


def advance(emu: Emulator, seconds: float) -> None:
    assert isinstance(emu.clock, ManualClock)
    emu.clock.advance(seconds)


def _signed(token: str, seen: Seen) -> str:
    """The signature the receiver should get, from the signed string's definition."""
    url = seen.url.split("?")[0] if seen.method == "GET" else seen.url
    base = signature_base(seen.method, url, seen.params)
    message = f"{base}.{seen.headers[NONCE_HEADER]}".encode()
    return base64.b64encode(hmac.new(token.encode(), message, hashlib.sha256).digest()).decode()


async def test_every_event_and_attribute_with_the_configured_methods(
    masking_emulator: Emulator, raw_receiver: RawReceiver
) -> None:
    """Status callbacks by GET and recording callbacks by POST (as configured) carry every
    documented attribute, arrive in SequenceNumber order 1, 2, 3... and are signed."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID,
        {
            "first_party": FIRST,
            "second_party": SECOND,
            "callback_url": raw_receiver.url,
            "callback_method": "GET",
            "record": True,
            "recording_callback_url": raw_receiver.url + "?kind=recording",
            "recording_callback_method": "POST",
            "session_expiry": 200,
        },
    )
    masking_emulator.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=20))
    advance(masking_emulator, 300)
    await masking_emulator.calls.settle()
    events = [s.params["EventName"] for s in raw_receiver.seen]
    assert events == [
        "SessionFirstPartyAnswer",
        "SessionSecondPartyRing",
        "SessionSecondPartyAnswer",
        "SessionRecordingInitiated",
        "SessionFirstPartyHangup",
        "SessionRecordingCompleted",
        "SessionSecondPartyHangup",
        "SessionPartiesHangup",
        "SessionTimeout",
    ]
    assert [int(s.params["SequenceNumber"]) for s in raw_receiver.seen] == list(range(1, 10))
    for seen in raw_receiver.seen:
        recording = seen.params["EventName"] in RECORDING_EVENTS
        assert seen.method == ("POST" if recording else "GET")
        names = RECORDING_ATTRIBUTES if recording else STATUS_ATTRIBUTES
        assert set(names) - {"SequenceNumber"} <= set(seen.params)
        assert "SequenceNumber" in seen.params
        assert seen.params["SessionUUID"] == record.uuid
        assert seen.params["VirtualNumber"] == record.virtual_number.lstrip("+")
        assert seen.headers[SIGNATURE_HEADER] == _signed(DEFAULT_AUTH_TOKEN, seen)
        assert seen.headers[SIGNATURE_MA_HEADER] == _signed(DEFAULT_AUTH_TOKEN, seen)
    hangup = raw_receiver.seen[4].params
    assert (hangup["Duration"], hangup["BilledDuration"], hangup["PlivoHangupCauseCode"]) == (
        "20",
        "60",
        "4000",
    )
    assert raw_receiver.seen[5].url.endswith("?kind=recording")


async def test_every_documented_event_is_emitted(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """Across a PIN call with recording, a failed recording and an expiry, the emulator emits
    each of the eleven documented events."""
    common = {
        "callback_url": callback_server.url,
        "recording_callback_url": callback_server.url,
        "record": True,
        "is_pin_authentication_required": True,
        "first_party_pin": "1234",
        "second_party_pin": "4321",
        "session_expiry": 600,
    }
    one = masking_emulator.store.create(
        DEFAULT_AUTH_ID, {"first_party": FIRST, "second_party": SECOND, **common}
    )
    masking_emulator.calls.call(
        "+12125550177", one.virtual_number, caller_phone=Phone(digits=["1234"], hangup_after=9)
    )
    advance(masking_emulator, 50)
    masking_emulator.calls.call(SECOND, one.virtual_number, recording_fails=True)
    advance(masking_emulator, 700)
    await masking_emulator.calls.settle()
    emitted = {event.event_name for event in callback_server.events}
    assert emitted == set(STATUS_EVENTS) | set(RECORDING_EVENTS)


async def test_failed_deliveries_are_retried_with_backoff(
    masking_emulator_factory: Callable[..., Any], raw_receiver: RawReceiver
) -> None:
    """A 500 and a 503 are retried (fresh nonce each time) until the 200; the control plane
    shows the attempts and their answers."""
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(delivery=FAST))
    )
    raw_receiver.answers.extend([500, 503])
    emu.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": raw_receiver.url},
    )
    emu.store.expire(DEFAULT_AUTH_ID, emu.store.state(DEFAULT_AUTH_ID).all[0].uuid)
    await emu.calls.settle()
    (delivery,) = emu.calls.deliveries()
    assert delivery.state == "delivered"
    assert [a.status for a in delivery.attempts] == [500, 503, 200]
    assert len({a.nonce for a in delivery.attempts}) == 3
    assert delivery.attempts[2].sent - delivery.attempts[1].sent >= FAST.wait_before(3) * 0.9
    assert delivery.latency is not None
    assert len(raw_receiver.seen) == 3


@pytest.mark.parametrize(
    ("answers", "attempts", "error"),
    [([400], 1, "not retried"), ([500] * 4, 4, "after 4 attempts")],
)
async def test_deliveries_give_up(
    masking_emulator_factory: Callable[..., Any],
    raw_receiver: RawReceiver,
    answers: list[int],
    attempts: int,
    error: str,
) -> None:
    """A final 4xx is not retried; 5xx answers are retried until the attempts are used up."""
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(delivery=FAST))
    )
    raw_receiver.answers.extend(answers)
    record = emu.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": raw_receiver.url},
    )
    emu.store.expire(DEFAULT_AUTH_ID, record.uuid)
    await emu.calls.settle()
    (delivery,) = emu.calls.deliveries()
    assert delivery.state == "failed"
    assert len(delivery.attempts) == attempts
    assert error in str(delivery.error)


async def test_an_event_the_handler_raised_on_is_delivered_again(
    masking_emulator_factory: Callable[..., Any],
) -> None:
    """Our receiver answers 500 when its handler raises; the emulator retries and the event is
    handled once it succeeds, so nothing is lost."""
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(delivery=FAST))
    )
    failures = [RuntimeError("database down"), RuntimeError("still down")]
    handled: list[str] = []

    async def flaky(event: Any) -> None:
        if failures:
            raise failures.pop(0)
        handled.append(event.event_name)

    async with CallbackServer(auth_token=DEFAULT_AUTH_TOKEN, handler=flaky) as server:
        record = emu.store.create(
            DEFAULT_AUTH_ID,
            {"first_party": FIRST, "second_party": SECOND, "callback_url": server.url},
        )
        emu.store.expire(DEFAULT_AUTH_ID, record.uuid)
        await emu.calls.settle()
    assert handled == ["SessionTimeout"]
    assert [a.status for a in emu.calls.deliveries()[0].attempts] == [500, 500, 200]


async def test_targets_must_be_loopback_unless_allowed(masking_emulator: Emulator) -> None:
    """A callback to a host that is not loopback is refused and never sent, unless allowed."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": "http://example.com/cb"},
    )
    masking_emulator.store.expire(DEFAULT_AUTH_ID, record.uuid)
    await masking_emulator.calls.settle()
    (delivery,) = masking_emulator.calls.deliveries()
    assert (delivery.state, delivery.attempts) == ("refused", [])
    assert "not loopback" in str(delivery.error)
    assert target_allowed("http://[::1]:80/x", CallsConfig()) is None
    assert target_allowed("http://localhost/x", CallsConfig()) is None
    assert target_allowed("http://hooks.test/x", CallsConfig(callback_hosts={"hooks.test"})) is None
    assert target_allowed("http://a.test/x", CallsConfig(allow_any_callback_host=True)) is None
    assert target_allowed("ftp://127.0.0.1/x", CallsConfig()) is not None


async def test_subaccount_sessions_are_signed_with_both_tokens(
    masking_emulator_factory: Callable[..., Any], raw_receiver: RawReceiver
) -> None:
    """X-Plivo-Signature-V3 uses the subaccount's token, -Ma-V3 the main account's."""
    sub = "SA" + "B" * 18
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(subaccount_tokens={sub: "sub-token"}))
    )
    record = emu.store.create(
        DEFAULT_AUTH_ID,
        {
            "first_party": FIRST,
            "second_party": SECOND,
            "subaccount": sub,
            "callback_url": raw_receiver.url,
        },
    )
    emu.store.expire(DEFAULT_AUTH_ID, record.uuid)
    await emu.calls.settle()
    (seen,) = raw_receiver.seen
    assert seen.headers[SIGNATURE_HEADER] == _signed("sub-token", seen)
    assert seen.headers[SIGNATURE_MA_HEADER] == _signed(DEFAULT_AUTH_TOKEN, seen)


async def test_callbacks_go_out_without_any_request(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """The engine's ticker notices the clock moved: callbacks arrive with no API call or settle."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": callback_server.url},
    )
    masking_emulator.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=5))
    advance(masking_emulator, 10)
    for _ in range(200):  # bounded: at most 20 s on a loaded machine
        if len(callback_server.events) == 6:
            break
        await asyncio.sleep(0.1)
    assert [e.event_name for e in callback_server.events][-1] == "SessionPartiesHangup"


async def test_control_plane_over_http(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """Calls are placed, scripted and inspected under /emulator/, with clear 400s on bad input."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": callback_server.url},
    )
    base = masking_emulator.base_url + "/emulator"
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{base}/phones/{SECOND}", data="answer=3,hangup=7") as answer:
            assert answer.status == 200
        body = {"from": FIRST, "to": record.virtual_number, "caller": {"hangup_after": 60}}
        async with http.post(f"{base}/calls", json=body) as answer:
            assert answer.status == 201
            call = await answer.json()
        assert (call["state"], call["outcome"], call["session_uuid"]) == (
            "in-progress",
            None,
            record.uuid,
        )
        advance(masking_emulator, 20)
        async with http.post(f"{base}/calls/settle") as answer:
            assert (await answer.json())["deliveries"] == {"delivered": 6}
        async with http.get(f"{base}/calls/{call['call_id']}") as answer:
            done = await answer.json()
        assert (done["state"], done["outcome"], done["ended_at"]) == (
            "completed",
            "completed",
            "2024-02-01 06:00:10 +0000 UTC",
        )
        async with http.get(f"{base}/callbacks", params={"session_uuid": record.uuid}) as answer:
            deliveries = (await answer.json())["callbacks"]
        assert [d["sequence_number"] for d in deliveries] == [1, 2, 3, 4, 5, 6]
        assert deliveries[0]["attempts"][0]["status"] == 200
        assert "tokens" not in deliveries[0]
        async with http.get(f"{base}/callbacks/{deliveries[-1]['id']}") as answer:
            assert (await answer.json())["params"]["EventName"] == "SessionPartiesHangup"
        for bad, message in [
            ({"to": record.virtual_number}, "from: required"),
            ({"from": "12", "to": record.virtual_number}, "from:"),
            ({"from": FIRST, "to": record.virtual_number, "caller": {"ring": 1}}, "unknown"),
            ({"from": FIRST, "to": record.virtual_number, "caller": "answer=x"}, "seconds"),
        ]:
            async with http.post(f"{base}/calls", json=bad) as answer:
                assert answer.status == 400
                assert message in (await answer.json())["error"]
        async with http.get(f"{base}/calls/nope") as answer:
            assert answer.status == 404


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("query", ["", "?tenant=7&empty="])
async def test_the_sdk_accepts_the_emulators_signatures(
    masking_emulator: Emulator, raw_receiver: RawReceiver, method: str, query: str
) -> None:
    """plivo's validate_v3_signature accepts both headers of every callback the emulator sent
    (empty attribute values included), given the URL and parameters as a receiver sees them."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID,
        {
            "first_party": FIRST,
            "second_party": SECOND,
            "callback_url": raw_receiver.url + query,
            "callback_method": method,
        },
    )
    masking_emulator.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=5))
    advance(masking_emulator, 10)
    await masking_emulator.calls.settle()
    assert len(raw_receiver.seen) == 6
    for seen in raw_receiver.seen:
        assert seen.method == method
        params = {} if method == "GET" else dict(seen.params)
        for header in (SIGNATURE_HEADER, SIGNATURE_MA_HEADER):
            assert validate_v3_signature(
                method,
                seen.url,
                seen.headers[NONCE_HEADER],
                DEFAULT_AUTH_TOKEN,
                seen.headers[header],
                params,
            )
        assert "" in seen.params.values()
