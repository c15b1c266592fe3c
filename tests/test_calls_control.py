"""The calls on the control plane: the admin token and JSON errors on their routes, a reset
ending calls under way, and the call side of sessions in state snapshots."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import aiohttp
import jsonschema_rs
import pytest

from masking_async.callbacks import CallbackServer
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    CallsConfig,
    Emulator,
    EmulatorConfig,
    ManualClock,
    Phone,
    Tariff,
)
from masking_async.emulator.calls.session_calls import session_status
from masking_async.emulator.openapi import build_document
from masking_async.emulator.render import session_body
from masking_async.emulator.snapshot import SnapshotError

FIRST, SECOND = "+12125550101", "+12125550102"
TOKEN = "calls-admin"
#: The session object's call fields, which a snapshot must carry over.
CALL_FIELDS = (
    "amount",
    "interaction",
    "total_call_amount",
    "total_call_count",
    "total_call_billed_duration",
    "total_session_amount",
    "last_interaction_time",
)


def advance(emu: Emulator, seconds: float) -> None:
    assert isinstance(emu.clock, ManualClock)
    emu.clock.advance(seconds)


def call_fields(emu: Emulator, uuid: str) -> dict[str, Any]:
    body = session_body(emu.store.get(DEFAULT_AUTH_ID, uuid))
    return {name: body[name] for name in CALL_FIELDS}


async def test_call_routes_need_the_admin_token(masking_emulator_factory: Any) -> None:
    """With an admin token, /emulator/calls|phones|callbacks answer 401 in the JSON envelope
    without it, and serve with it."""
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, admin_token=TOKEN)
    )
    record = emu.store.create(DEFAULT_AUTH_ID, {"first_party": FIRST, "second_party": SECOND})
    base = f"{emu.base_url}/emulator"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    body = {"from": FIRST, "to": record.virtual_number}
    async with aiohttp.ClientSession() as http:
        for method, path in [("POST", "/calls"), ("GET", "/phones"), ("GET", "/callbacks")]:
            async with http.request(method, base + path, json=body) as answer:
                assert answer.status == 401
                assert set(await answer.json()) == {"api_id", "error"}
        assert list(emu.calls.calls) == []
        async with http.post(f"{base}/calls", json=body, headers=bearer) as answer:
            assert answer.status == 201
        async with http.get(f"{base}/calls/nope", headers=bearer) as answer:
            assert answer.status == 404
            assert set(await answer.json()) == {"api_id", "error"}
    assert len(emu.calls.calls) == 1


async def test_a_reset_ends_the_calls_under_way(
    masking_emulator: Emulator, callback_server: CallbackServer
) -> None:
    """POST /emulator/reset forgets the sessions and ends their calls as ``reset``: no step
    and no callback of theirs comes after it."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": callback_server.url},
    )
    call = masking_emulator.calls.call(
        FIRST, record.virtual_number, caller_phone=Phone(hangup_after=30)
    )
    advance(masking_emulator, 5)
    await masking_emulator.calls.settle()
    sent = len(callback_server.events)
    assert sent > 0
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{masking_emulator.base_url}/emulator/reset") as answer,
    ):
        assert answer.status == 200
    advance(masking_emulator, 100)
    await masking_emulator.calls.settle()
    assert (call.done, call.outcome) == (True, "reset")
    assert len(callback_server.events) == sent


async def test_call_state_survives_a_snapshot(
    masking_emulator_factory: Any, callback_server: CallbackServer
) -> None:
    """Totals, interactions, the session fee and the callback sequence are saved and loaded:
    the loaded session renders the same call fields, and its next callback continues the
    sequence."""
    tariff = Tariff(per_minute=Decimal("0.0120"), increment=30, session_fee=Decimal("0.05"))
    config = EmulatorConfig(rate_limit=None, calls=CallsConfig(tariff=tariff))
    first: Emulator = await masking_emulator_factory(config)
    record = first.store.create(
        DEFAULT_AUTH_ID,
        {"first_party": FIRST, "second_party": SECOND, "callback_url": callback_server.url},
    )
    first.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=70))
    advance(first, 100)
    await first.calls.settle()
    before = call_fields(first, record.uuid)
    assert before["total_call_count"] == 2
    assert before["interaction"] is not None
    sent = max(event.sequence_number for event in callback_server.events)
    document = first.dump_state()

    second: Emulator = await masking_emulator_factory(config)
    second.load_state(document)
    assert call_fields(second, record.uuid) == before
    assert second.dump_state()["accounts"] == document["accounts"]
    callback_server.events.clear()
    second.store.expire(DEFAULT_AUTH_ID, record.uuid)
    await second.calls.settle()
    assert [e.sequence_number for e in callback_server.events] == [sent + 1]


async def test_a_call_under_way_is_not_saved(
    masking_emulator: Emulator, masking_emulator_factory: Any
) -> None:
    """A session in a call at the snapshot is ``in-progress``; loaded, it is ``active`` (the
    call's remaining steps are not part of the state)."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID, {"first_party": FIRST, "second_party": SECOND}
    )
    masking_emulator.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=60))
    advance(masking_emulator, 5)
    assert session_status(masking_emulator.store.get(DEFAULT_AUTH_ID, record.uuid)) == (
        "in-progress"
    )
    other: Emulator = await masking_emulator_factory()
    other.load_state(masking_emulator.dump_state())
    assert session_status(other.store.get(DEFAULT_AUTH_ID, record.uuid)) == "active"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"call_count": -1}, "calls.call_count: must be >= 0"),
        ({"call_amount": "lots"}, "calls.call_amount: must be a decimal amount"),
        ({"call_amount": 1.5}, "calls.call_amount: missing or of the wrong type"),
        ({"session_fee": "NaN"}, "calls.session_fee: must be a decimal amount"),
        ({"last_interaction_time": "yesterday"}, "calls.last_interaction_time: must be an ISO"),
        ({"interactions": [{"first_party_resource_url": None}]}, "interactions[0]: must have"),
        ({"interactions": "none"}, "calls.interactions: missing or of the wrong type"),
    ],
)
async def test_bad_call_state_is_refused_by_place(
    masking_emulator: Emulator, change: dict[str, Any], message: str
) -> None:
    """A wrong value in a session's ``calls`` is a SnapshotError naming the field; the state
    stays as it was."""
    record = masking_emulator.store.create(
        DEFAULT_AUTH_ID, {"first_party": FIRST, "second_party": SECOND}
    )
    masking_emulator.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=5))
    advance(masking_emulator, 60)
    document = masking_emulator.dump_state()
    bad = copy.deepcopy(document)
    bad["accounts"][DEFAULT_AUTH_ID]["sessions"][0]["calls"].update(change)
    with pytest.raises(SnapshotError, match=message.replace("[", r"\[").replace("]", r"\]")):
        masking_emulator.load_state(bad)
    assert masking_emulator.dump_state()["accounts"] == document["accounts"]


async def test_sessions_with_calls_conform_to_the_openapi_document(
    masking_emulator_factory: Any,
) -> None:
    """A session in a call and after it (amounts as decimal text, interactions, in-progress)
    still matches the Session schema the emulator publishes."""
    tariff = Tariff(per_minute=Decimal("0.0120"), increment=30, session_fee=Decimal("0.05"))
    emu: Emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, calls=CallsConfig(tariff=tariff))
    )
    components = build_document()["components"]
    schema = {"$ref": "#/components/schemas/Session", "components": components}
    validator = jsonschema_rs.validator_for(schema)
    record = emu.store.create(DEFAULT_AUTH_ID, {"first_party": FIRST, "second_party": SECOND})
    emu.calls.call(FIRST, record.virtual_number, caller_phone=Phone(hangup_after=40))
    for seconds, status in [(5, "in-progress"), (100, "active")]:
        advance(emu, seconds)
        body = session_body(emu.store.get(DEFAULT_AUTH_ID, record.uuid))
        assert body["status"] == status
        assert [str(error) for error in validator.iter_errors(body)] == []
