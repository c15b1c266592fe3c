"""The emulator's endpoints over HTTP: envelopes, formats, auth, validation, update and expiry."""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

import pytest

from masking_async.emulator import Account, EmulatorConfig
from masking_async.phones import party_numbers
from masking_async.rules import IMMUTABLE_ON_UPDATE

A, B, C, D = islice(party_numbers("US", start=500), 4)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})? \+0000 UTC")
SESSION_KEYS = {
    "first_party", "second_party", "virtual_number", "status", "initiate_call_to_first_party",
    "session_uuid", "callback_url", "callback_method", "created_time", "modified_time",
    "expiry_time", "duration", "amount", "call_time_limit", "ring_timeout", "record",
    "record_file_format", "recording_callback_url", "recording_callback_method", "interaction",
    "total_call_amount", "total_call_count", "total_call_billed_duration",
    "total_session_amount", "last_interaction_time", "first_party_play_url",
    "second_party_play_url",
}  # fmt: skip
OTHER = Account("MAOTHERACCOUNT000001", "other-token")
PIN = {
    "is_pin_authentication_required": True,
    "first_party_pin": "1234",
    "second_party_pin": "4321",
    "pin_prompt_play": "https://example.com/prompt.wav",
    "incorrect_pin_play": "https://example.com/wrong.mp3",
}


@pytest.mark.parametrize("slash", [True, False])
async def test_every_endpoint_with_and_without_trailing_slash(emulator_http, slash):
    """Create, retrieve, list, update and expire all answer with or without the final slash."""
    api = emulator_http
    status, created, _ = await api.call(
        "POST", json={"first_party": A, "second_party": B}, slash=slash
    )
    assert status == 201
    uuid = created["session_uuid"]
    assert (await api.call("GET", uuid, slash=slash))[0] == 200
    assert (await api.call("GET", slash=slash))[0] == 200
    assert (await api.call("POST", uuid, slash=slash, json={"record": True}))[0] == 200
    assert (await api.call("DELETE", uuid, slash=slash))[0] == 200


async def test_create_answers_in_the_current_shape(emulator_http):
    """Create's envelope, field names and value formats match the reference exactly."""
    body = await emulator_http.create(first_party=A, second_party=B)
    assert set(body) == {"api_id", "session_uuid", "virtual_number", "message", "session"}
    assert body["message"] == "Session created"
    session = body["session"]
    assert set(session) == SESSION_KEYS
    assert body["virtual_number"] == "+" + session["virtual_number"]
    assert not session["virtual_number"].startswith("+")
    assert (session["first_party"], session["second_party"]) == (A[1:], B[1:])
    assert session["session_uuid"] == body["session_uuid"]
    for key in ("created_time", "modified_time", "expiry_time"):
        assert TIMESTAMP.fullmatch(session[key]), session[key]
    assert session["created_time"] == "2024-02-01 06:00:00 +0000 UTC"
    assert session["expiry_time"] == "2024-02-01 07:00:00 +0000 UTC"
    assert session["interaction"] is None
    assert session["last_interaction_time"] == ""
    for key in ("amount", "total_call_amount", "total_session_amount", "total_call_count"):
        assert session[key] == 0
    assert (session["duration"], session["call_time_limit"], session["ring_timeout"]) == (
        3600,
        3600,
        120,
    )
    assert session["status"] == "active"


async def test_retrieve_update_and_expire_envelopes(emulator_http):
    """Retrieve wraps the session in ``response``, update in ``session``; each api_id is new."""
    api = emulator_http
    uuid = (await api.create(first_party=A, second_party=B))["session_uuid"]
    _, got, _ = await api.call("GET", uuid)
    assert set(got) == {"api_id", "response"}
    assert set(got["response"]) == SESSION_KEYS
    _, updated, _ = await api.call("POST", uuid, json={"call_time_limit": 10, "session_uuid": uuid})
    assert set(updated) == {"api_id", "message", "session"}
    assert updated["message"] == "Session updated"
    assert updated["session"]["call_time_limit"] == 60  # clamped into 60-86400, as documented
    _, expired, _ = await api.call("DELETE", uuid, json={"session_uuid": uuid})
    assert expired["message"] == "Session Deleted"
    assert len({got["api_id"], updated["api_id"], expired["api_id"]}) == 3


async def test_single_party_session_has_null_second_party(emulator_http):
    """A session created with one party shows ``second_party: null`` until an update adds it."""
    body = await emulator_http.create(first_party=A, create_session_with_single_party=True)
    assert body["session"]["second_party"] is None


async def test_pin_session_carries_pin_fields_with_the_real_quirks(emulator_http):
    """PIN sessions render the PIN fields, ``"pin_ prompt_play"`` and a string pin_retry_wait."""
    session = (await emulator_http.create(first_party=A, second_party=B, **PIN))["session"]
    assert session["is_pin_authentication_required"] is True
    assert (session["first_party_pin"], session["second_party_pin"]) == ("1234", "4321")
    assert session["pin_ prompt_play"] == PIN["pin_prompt_play"]
    assert session["pin_retry_wait"] == "5"


async def test_generated_pins_have_the_requested_length(emulator_http):
    """generate_pin makes two different PINs of generate_pin_length digits."""
    params = {k: v for k, v in PIN.items() if not k.endswith("party_pin")}
    body = await emulator_http.create(
        first_party=A, second_party=B, generate_pin=True, generate_pin_length=6, **params
    )
    pins = body["session"]["first_party_pin"], body["session"]["second_party_pin"]
    assert all(re.fullmatch(r"\d{6}", pin) for pin in pins)
    assert pins[0] != pins[1]


# -- auth ------------------------------------------------------------------------------------


async def test_missing_and_wrong_credentials_are_401(emulator_http):
    """No auth header, a wrong token or an unknown account all answer 401 with an error body."""
    api = emulator_http
    for auth in [(api.auth_id, "wrong"), ("MANOSUCHACCOUNT00001", "x")]:
        status, body, _ = await api.call("GET", auth=auth)
        assert status == 401
        assert set(body) == {"api_id", "error"}
    async with api.session.get(api.url()) as response:
        assert response.status == 401
        assert "authentication required" in (await response.json())["error"]


async def test_path_auth_id_must_match_the_credentials(masking_emulator_factory, emulator_http_for):
    """Valid credentials for one account cannot reach another account's path (401)."""
    emulator = await masking_emulator_factory(
        EmulatorConfig(accounts=[Account("MAFIRSTACCOUNT000001", "t1"), OTHER], rate_limit=None)
    )
    api = emulator_http_for(emulator, auth_id="MAFIRSTACCOUNT000001", auth_token="t1")
    status, body, _ = await api.call("GET", path_auth_id=OTHER.auth_id)
    assert status == 401
    assert "does not match" in body["error"]


async def test_accounts_never_see_each_others_sessions(masking_emulator_factory, emulator_http_for):
    """A session of one account is 404 to another, for retrieve, update and expire, and unlisted."""
    first = Account("MAFIRSTACCOUNT000001", "t1")
    emulator = await masking_emulator_factory(EmulatorConfig(accounts=[first, OTHER]))
    mine = emulator_http_for(emulator, auth_id=first.auth_id, auth_token="t1")
    theirs = emulator_http_for(emulator, auth_id=OTHER.auth_id, auth_token=OTHER.auth_token)
    uuid = (await mine.create(first_party=A, second_party=B))["session_uuid"]
    for method, body in (("GET", None), ("POST", {"record": True}), ("DELETE", None)):
        status, answer, _ = await theirs.call(method, uuid, json=body)
        assert status == 404, (method, answer)
    _, listed = await theirs.list()
    assert listed["response"]["meta"]["total_count"] == 0


# -- routing and bodies ----------------------------------------------------------------------


async def test_unknown_routes_and_methods_answer_json_404_and_405(emulator_http):
    """Unknown paths are a JSON 404, a wrong method on a known path a JSON 405 with Allow."""
    api = emulator_http
    async with api.session.get(api.emulator.base_url + "/v1/Account/x/Calls/") as response:
        assert response.status == 404
        assert set(await response.json()) == {"api_id", "error"}
    status, body, headers = await api.call("PUT")
    assert status == 405
    assert "error" in body
    assert set(headers["Allow"].split(",")) == {"GET", "POST"}
    assert (await api.call("GET", "no-such-session"))[0] == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [("{not json", "malformed JSON body"), ("[1, 2]", "must be an object")],
)
async def test_malformed_bodies_are_400(emulator_http, data, message):
    """A body that is not a JSON object is refused with a clear message."""
    status, body, _ = await emulator_http.call("POST", data=data)
    assert status == 400
    assert message in body["error"]


GOOD = {"first_party": A, "second_party": B}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"second_party": B}, "first_party: is required"),
        ({"first_party": A}, "second_party: is required"),
        ({**GOOD, "first_party": "12345"}, "first_party: must be a valid phone number"),
        ({**GOOD, "second_party": A}, "second_party: must differ from first_party"),
        ({**GOOD, "session_expiry": 59}, "session_expiry: must be between 60 and 86400"),
        ({**GOOD, "session_expiry": "3600"}, "session_expiry: must be an integer"),
        ({**GOOD, "ring_timeout": 121}, "ring_timeout: must be between 1 and 120"),
        ({**GOOD, "record": "yes"}, "record: must be a boolean"),
        ({**GOOD, "record_file_format": "ogg"}, "record_file_format: must be one of mp3, wav"),
        ({**GOOD, "callback_method": "PUT"}, "callback_method: must be one of GET, POST"),
        ({**GOOD, "callback_url": "ftp://example.com/x"}, "callback_url: must be an http"),
        ({**GOOD, "callback_url": "https://e.com/" + "x" * 1000}, "at most 1000 characters"),
        ({**GOOD, "first_party_play_url": "https://e.com/a.txt"}, "must be the URL of an .mp3"),
        ({**GOOD, "is_pin_authentication_required": True}, "first_party_pin: is required"),
        ({**GOOD, "generate_pin": True}, "generate_pin: requires is_pin_authentication_required"),
        ({**GOOD, **PIN, "first_party_pin": "12"}, "first_party_pin: must be 4 to 15 digits"),
        ({**GOOD, **PIN, "second_party_pin": "1234"}, "second_party_pin: must differ"),
        ({**GOOD, **PIN, "pin_retry": 6}, "pin_retry: must be between 0 and 5"),
        ({**GOOD, **PIN, "pin_retry_wait": 4}, "pin_retry_wait: must be between 5 and 10"),
        ({**GOOD, "virtual_number_cooloff_period": 3601}, "must be between 0 and 3600"),
        ({**GOOD, "subaccount": "XY123"}, "subaccount: must be a subaccount auth id"),
        ({**GOOD, "colour": "blue"}, "colour: is not a known parameter"),
        ({**GOOD, "session_uuid": "x"}, "session_uuid: is not a known parameter"),
    ],
)
async def test_create_validation_names_field_and_rule(emulator_http, params, expected):
    """Each broken create rule is a 400 whose message names the field and the rule."""
    status, body, _ = await emulator_http.call("POST", json=params)
    assert status == 400
    assert expected in body["error"]


# -- update and expire -----------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(IMMUTABLE_ON_UPDATE))
async def test_immutable_fields_are_refused_by_name(emulator_http, field):
    """Fields the spec freezes on an active session are refused, named in the error."""
    api = emulator_http
    uuid = (await api.create(**GOOD))["session_uuid"]
    status, body, _ = await api.call("POST", uuid, json={field: True})
    assert status == 400
    assert f"{field}: cannot be updated" in body["error"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"colour": "red"}, "colour: is not a parameter that can be updated"),
        ({}, "at least one parameter"),
        ({"session_uuid": "x"}, "at least one parameter"),
        ({"ring_timeout": 0}, "ring_timeout: must be between 1 and 120"),
        ({"second_party": C}, "can be updated only on a session created with"),
    ],
)
async def test_update_validation(emulator_http, params, expected):
    """Bad update bodies, and party changes on a two-party session, are 400 with the reason."""
    api = emulator_http
    uuid = (await api.create(**GOOD))["session_uuid"]
    status, body, _ = await api.call("POST", uuid, json=params)
    assert status == 400
    assert expected in body["error"]


async def test_single_party_session_accepts_parties_on_update(emulator_http):
    """A single-party session takes its second party (and a new first) by update."""
    api = emulator_http
    uuid = (await api.create(first_party=A, create_session_with_single_party=True))["session_uuid"]
    status, body, _ = await api.call("POST", uuid, json={"second_party": B})
    assert status == 200, body
    assert body["session"]["second_party"] == B[1:]
    status, body, _ = await api.call("POST", uuid, json={"first_party": C})
    assert (status, body["session"]["first_party"]) == (200, C[1:])
    status, body, _ = await api.call("POST", uuid, json={"first_party": B})
    assert status == 400
    assert "must differ" in body["error"]


async def test_session_expiry_update_counts_from_the_update(emulator_http):
    """An updated session_expiry runs from the update (as recorded answers show); duration is
    then expiry_time - created_time."""
    api = emulator_http
    uuid = (await api.create(**GOOD, session_expiry=600))["session_uuid"]
    api.emulator.clock.advance(100)
    _, body, _ = await api.call("POST", uuid, json={"session_expiry": 7200})
    session = body["session"]
    assert session["expiry_time"] == "2024-02-01 08:01:40 +0000 UTC"
    assert session["duration"] == 7300
    assert session["modified_time"] == "2024-02-01 06:01:40 +0000 UTC"


async def test_sessions_expire_by_themselves_on_the_clock(emulator_http):
    """Past session_expiry a session reads expired, with no request having touched it."""
    api = emulator_http
    uuid = (await api.create(**GOOD, session_expiry=60))["session_uuid"]
    api.emulator.clock.advance(59)
    assert (await api.call("GET", uuid))[1]["response"]["status"] == "active"
    api.emulator.clock.advance(1)
    session = (await api.call("GET", uuid))[1]["response"]
    assert session["status"] == "expired"
    assert session["expiry_time"] == "2024-02-01 06:01:00 +0000 UTC"
    _, listed = await api.list(status="expired")
    assert [o["session_uuid"] for o in listed["response"]["objects"]] == [uuid]


async def test_shortening_expiry_counts_from_the_update_too(emulator_http):
    """A shorter session_expiry sent late still leaves the session active until now + expiry."""
    api = emulator_http
    uuid = (await api.create(**GOOD))["session_uuid"]
    api.emulator.clock.advance(120)
    _, body, _ = await api.call("POST", uuid, json={"session_expiry": 60})
    assert body["session"]["status"] == "active"
    assert body["session"]["expiry_time"] == "2024-02-01 06:03:00 +0000 UTC"
    assert body["session"]["duration"] == 180
    api.emulator.clock.advance(60)
    assert (await api.call("GET", uuid))[1]["response"]["status"] == "expired"


async def test_expired_session_cannot_be_updated(emulator_http):
    """Updating an expired session is a 400 that says so."""
    api = emulator_http
    uuid = (await api.create(**GOOD))["session_uuid"]
    await api.call("DELETE", uuid)
    status, body, _ = await api.call("POST", uuid, json={"record": True})
    assert status == 400
    assert "expired" in body["error"]


async def test_expire_sets_status_and_expiry_time_and_is_repeatable(emulator_http):
    """DELETE expires now (expiry_time, modified_time; duration stays, as recorded answers
    show); a second DELETE is a harmless 200."""
    api = emulator_http
    uuid = (await api.create(**GOOD))["session_uuid"]
    api.emulator.clock.advance(90)
    assert (await api.call("DELETE", uuid))[0] == 200
    session = (await api.call("GET", uuid))[1]["response"]
    assert session["status"] == "expired"
    assert session["expiry_time"] == "2024-02-01 06:01:30 +0000 UTC"
    assert session["modified_time"] == "2024-02-01 06:01:30 +0000 UTC"
    assert session["duration"] == 3600
    assert (await api.call("DELETE", uuid, json={"session_uuid": uuid}))[0] == 200


async def test_expire_body_accepts_only_session_uuid(emulator_http):
    """A DELETE body may carry session_uuid (as the SDK sends) but nothing else."""
    api = emulator_http
    uuid = (await api.create(**GOOD))["session_uuid"]
    status, body, _ = await api.call("DELETE", uuid, json={"reason": "done"})
    assert status == 400
    assert "reason: is not a known parameter" in body["error"]


def _fields(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer["session"].items() if k != "modified_time"}


async def test_options_sent_at_create_are_echoed(emulator_http):
    """Arguments sent at create come back in the session, normalised."""
    body = await emulator_http.create(
        **GOOD,
        record=True,
        record_file_format="WAV",
        callback_url="https://example.com/cb",
        first_party_play_url="https://example.com/a.mp3",
        subaccount="SA" + "1" * 18,
    )
    session = _fields(body)
    assert session["record"] is True
    assert session["record_file_format"] == "wav"
    assert session["callback_url"] == "https://example.com/cb"
    assert session["first_party_play_url"] == "https://example.com/a.mp3"
    assert session["subaccount"] == "SA" + "1" * 18
