"""Differences from the spec and from the real API's recorded answers, each pinned by a test."""

from __future__ import annotations

import io
import json
from itertools import islice
from pathlib import Path

import aiohttp
import pytest

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.phones import party_numbers
from masking_async.rules import check_list_filters, check_update

A, B, C, D = islice(party_numbers("US", start=1600), 4)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PIN = {
    "first_party_pin": "1234",
    "second_party_pin": "4321",
    "pin_prompt_play": "https://example.com/prompt.wav",
    "incorrect_pin_play": "https://example.com/wrong.mp3",
}


async def _uuids(api, **filters):
    status, body = await api.list(**filters)
    assert status == 200, body
    return [o["session_uuid"] for o in body["response"]["objects"]]


# -- times: shown to the microsecond, filtered consistently ---------------------------------


@pytest.mark.parametrize("field", ["created_time", "expiry_time"])
async def test_time_filters_agree_with_the_time_shown(emulator_http, field):
    """For the time a session shows, =, __gte and __lte include it and __gt, __lt exclude it."""
    api = emulator_http
    api.emulator.clock.advance(0.25)
    session = (await api.create(first_party=A, second_party=B))["session"]
    shown = session[field].removesuffix(" +0000 UTC")
    assert shown.endswith(".25")
    uuid = session["session_uuid"]
    assert await _uuids(api, **{field: shown}) == [uuid]
    assert await _uuids(api, **{f"{field}__gte": shown}) == [uuid]
    assert await _uuids(api, **{f"{field}__lte": shown}) == [uuid]
    assert await _uuids(api, **{f"{field}__gt": shown}) == []
    assert await _uuids(api, **{f"{field}__lt": shown}) == []


async def test_an_exact_time_filter_covers_its_written_precision(emulator_http):
    """``created_time`` to the second or the minute matches a session created within it."""
    api = emulator_http
    api.emulator.clock.advance(75.5)  # 06:01:15.5
    uuid = (await api.create(first_party=A, second_party=B))["session_uuid"]
    assert await _uuids(api, created_time="2024-02-01 06:01:15") == [uuid]
    assert await _uuids(api, created_time="2024-02-01 06:01") == [uuid]
    assert await _uuids(api, created_time="2024-02-01 06:01:15.4") == []


async def test_expiry_time_has_a_seven_day_default_window(emulator_http):
    """A one-sided expiry_time range covers the 7 days from its bound, as the spec says."""
    api = emulator_http
    short = (await api.create(first_party=A, second_party=B, session_expiry=3600))["session_uuid"]
    api.emulator.clock.advance(8 * 86400)
    recent = (await api.create(first_party=C, second_party=D))["session_uuid"]
    both = {"created_time__gte": "2024-02-01 00:00"}
    assert await _uuids(api, **both) == [recent, short]
    assert await _uuids(api, **both, expiry_time__gte="2024-02-01 06:00") == [short]
    assert await _uuids(api, **both, expiry_time__lte="2024-02-09 07:00") == [recent]


# -- string booleans, as the update page's own example sends them ----------------------------


async def test_update_accepts_record_true_as_a_string(emulator_http):
    """``{"record": "true"}`` is an update to record, not a 400."""
    api = emulator_http
    uuid = (await api.create(first_party=A, second_party=B))["session_uuid"]
    status, body, _ = await api.call("POST", uuid, json={"record": "true"})
    assert (status, body["session"]["record"]) == (200, True)


async def test_create_accepts_string_pin_authentication(emulator_http):
    """``is_pin_authentication_required: "true"`` is a PIN session, with no cascade of errors."""
    body = await emulator_http.create(
        first_party=A, second_party=B, is_pin_authentication_required="true", **PIN
    )
    assert body["session"]["is_pin_authentication_required"] is True


def test_string_booleans_are_checked_not_guessed():
    """Only true/false spell a boolean; other strings still break the rule."""
    assert check_update({"record": "TRUE"})[0] == {"record": True}
    assert [v.field for v in check_update({"record": "yes please"})[1]] == ["record"]


# -- natural expiry --------------------------------------------------------------------------


async def test_natural_expiry_keeps_modified_time(emulator_http):
    """A session that expires by itself still shows the time of its last change."""
    api = emulator_http
    uuid = (await api.create(first_party=A, second_party=B, session_expiry=60))["session_uuid"]
    api.emulator.clock.advance(20)
    await api.call("POST", uuid, json={"record": True})
    api.emulator.clock.advance(3600)
    session = (await api.call("GET", uuid))[1]["response"]
    assert session["status"] == "expired"
    assert session["modified_time"] == "2024-02-01 06:00:20 +0000 UTC"


# -- errors always in the JSON envelope ------------------------------------------------------


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({"method": "GET", "path": "/" + "a" * 100_000}, 414),
        ({"method": "GET", "query": "status=" + "a" * 20_000}, 414),
        ({"method": "GET", "headers": {"X-Big": "b" * 20_000}}, 431),
        ({"method": "POST", "data": b"x" * (2 * 1024**2)}, 413),
        ({"method": "GET", "query": "duration__gte=" + "9" * 5000}, 400),
        ({"method": "GET", "query": "offset=" + "1" * 5000}, 400),
    ],
)
async def test_oversized_requests_get_the_json_envelope(masking_emulator, request_args, status):
    """Huge paths, queries, headers, bodies and numbers are refused as {"api_id", "error"}."""
    base = f"{masking_emulator.base_url}/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/"
    url = masking_emulator.base_url + request_args["path"] if "path" in request_args else base
    if "query" in request_args:
        url += "?" + request_args["query"]
    headers = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN)}
    headers |= request_args.get("headers", {})
    data = io.BytesIO(request_args["data"]) if "data" in request_args else None
    async with (
        aiohttp.ClientSession() as http,
        http.request(request_args["method"], url, headers=headers, data=data) as response,
    ):
        assert response.status == status
        assert response.content_type == "application/json"
        body = await response.json()
    assert set(body) == {"api_id", "error"}
    assert "not found" not in body["error"]
    assert masking_emulator.request_log.entries()[-1].status == status


def test_a_huge_number_filter_is_a_violation_not_a_crash():
    """The shared rules answer a 5,000-digit duration with a Violation (client and emulator)."""
    _, violations = check_list_filters({"duration__gte": "9" * 5000})
    assert [v.field for v in violations] == ["duration__gte"]


# -- the recorded form, where the reference's examples are silent ----------------------------


def _recorded_session_keys() -> set[str]:
    recorded = json.loads((FIXTURES / "maskingSessionGetResponse.json").read_text())
    return set(recorded["response"])


async def test_sessions_carry_every_recorded_key_with_empty_play_urls(emulator_http):
    """A retrieve has the recorded answer's keys; unset play URLs are "" as recorded."""
    api = emulator_http
    uuid = (await api.create(first_party=A, second_party=B))["session_uuid"]
    session = (await api.call("GET", uuid))[1]["response"]
    assert set(session) == _recorded_session_keys()
    assert (session["first_party_play_url"], session["second_party_play_url"]) == ("", "")


async def test_delete_answers_in_the_recorded_form(emulator_http):
    """DELETE answers {"api_id", "message": "Session Deleted"}, like the recorded answer."""
    api = emulator_http
    uuid = (await api.create(first_party=A, second_party=B))["session_uuid"]
    recorded = json.loads((FIXTURES / "maskingSessionDeleteResponse.json").read_text())
    status, body, _ = await api.call("DELETE", uuid)
    assert status == 200
    assert set(body) == set(recorded)
    assert body["message"] == recorded["message"]


async def test_system_clock_times_show_microseconds(masking_emulator_factory, emulator_http_for):
    """On a real clock, created/modified/expiry times carry microseconds, as recorded answers."""
    from masking_async.emulator import EmulatorConfig, ManualClock

    clock = ManualClock(1_700_000_000.123456)
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=None), clock=clock)
    session = (await emulator_http_for(emulator).create(first_party=A, second_party=B))["session"]
    assert session["created_time"] == "2023-11-14 22:13:20.123456 +0000 UTC"
    assert session["expiry_time"] == "2023-11-14 23:13:20.123456 +0000 UTC"
