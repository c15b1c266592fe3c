"""The first version of the API (``/v1/Account/{auth_id}/Session/``) over HTTP: each legacy rule,
its short answer, and its sessions being the current API's sessions (one store, one rate limit,
one request log, the same fault rules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import islice
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from masking_async.emulator import DEFAULT_AUTH_ID, Emulator, EmulatorConfig, ServerRateLimit
from masking_async.emulator.faults import FaultRule
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.phones import party_numbers
from masking_async.rules import (
    CALL_TIME_LIMIT_RANGE,
    LEGACY_DEFAULTS,
    MAX_URL_LENGTH,
    SESSION_EXPIRY_RANGE,
    check_legacy_create,
)

A, B, C, D = islice(party_numbers("US", start=700), 4)
LOW, HIGH = CALL_TIME_LIMIT_RANGE
URL = "https://example.com/recording"


@attrs.frozen
class Doors:
    """Raw HTTP to one emulator account through the first version's paths and the current ones."""

    legacy: Any  # conftest's EmulatorHTTP on ``/Session``
    current: Any  # the same, on ``/Masking/Session``

    async def call(self, *args: Any, **kwargs: Any) -> tuple[int, Any, Any]:
        return await self.legacy.call(*args, **kwargs)

    async def create(self, **params: Any) -> dict[str, Any]:
        return await self.legacy.create(**params)

    async def made(self, **params: Any) -> dict[str, Any]:
        """A legacy create (201 expected), answered with the session as the current API reads it."""
        body = await self.create(**params)
        status, found, _ = await self.current.call("GET", body["session_uuid"])
        assert status == 200
        return dict(found["response"])


def _doors(emulator_http_for: Callable[..., Any], emulator: Emulator) -> Doors:
    return Doors(emulator_http_for(emulator, collection="Session"), emulator_http_for(emulator))


@pytest.fixture
def legacy(emulator_http_for: Callable[..., Any], masking_emulator: Emulator) -> Doors:
    return _doors(emulator_http_for, masking_emulator)


def _refused(status: int, body: Any, field: str) -> bool:
    return status == 400 and body["error"].startswith(f"{field}:")


# -- the answer ------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_create_answers_the_short_legacy_shape(legacy, slash):
    """Create answers 201 with exactly api_id, session_uuid, virtual_number (E.164), message."""
    status, body, _ = await legacy.call(
        "POST", json={"first_party": A, "second_party": B}, slash=slash
    )
    assert status == 201
    assert set(body) == {"api_id", "session_uuid", "virtual_number", "message"}
    assert body["virtual_number"].startswith("+")
    assert body["message"] == "Session created"


@pytest.mark.parametrize("slash", [True, False])
async def test_delete_expires_with_and_without_slash(legacy, slash):
    """DELETE Session/{uuid}[/] answers the delete envelope; the current API sees it expired."""
    made = await legacy.create(first_party=A, second_party=B)
    status, body, _ = await legacy.call("DELETE", made["session_uuid"], slash=slash)
    assert (status, body["message"]) == (200, "Session Deleted")
    _, found, _ = await legacy.current.call("GET", made["session_uuid"])
    assert found["response"]["status"] == "expired"


async def test_delete_takes_the_null_body_the_go_sdk_sends(legacy):
    """The Go SDK's DeleteMaskingSession sends the JSON ``null``: it counts as no body."""
    made = await legacy.create(first_party=A, second_party=B)
    status, _, _ = await legacy.call("DELETE", made["session_uuid"], data=b"null\n")
    assert status == 200


async def test_the_go_sdks_legacy_requests_as_they_go_on_the_wire(legacy):
    """Bytes as the Go SDK's Calls.CreateMaskingSession/DeleteMaskingSession send them: a JSON
    create carrying ``session_expiry: 0`` when unset, then a DELETE whose body is ``null``."""
    body = f'{{"first_party":"{A}","second_party":"{B}","session_expiry":0}}\n'.encode()
    status, made, _ = await legacy.call("POST", data=body)
    assert status == 201, made
    deleted = await legacy.call("DELETE", made["session_uuid"], data=b"null\n")
    assert deleted[0] == 200


async def test_delete_of_an_unknown_session_is_404(legacy):
    """The legacy delete meets the store's rules: no such session, 404 in the envelope."""
    status, body, _ = await legacy.call("DELETE", "4189591e-d004-4bd8-9ec1-ff0e0b3d26a1")
    assert status == 404
    assert set(body) == {"api_id", "error"}


# -- each rule ---------------------------------------------------------------------------------


async def test_defaults_are_the_legacy_ones(legacy):
    """Unsent, session_expiry is 1800 s and call_time_limit 14400 s (the current API: 3600)."""
    session = await legacy.made(first_party=A, second_party=B)
    assert session["duration"] == LEGACY_DEFAULTS["session_expiry"] == 1800
    assert session["call_time_limit"] == LEGACY_DEFAULTS["call_time_limit"] == 14400


async def test_session_expiry_zero_is_the_default(legacy):
    """``session_expiry: 0`` (the Go SDK sends it when unset) is the default, not an error."""
    session = await legacy.made(first_party=A, second_party=B, session_expiry=0)
    assert session["duration"] == 1800


@pytest.mark.parametrize("value", SESSION_EXPIRY_RANGE)
async def test_session_expiry_bounds_are_taken(legacy, value):
    """session_expiry 60 and 86400 are kept as sent."""
    session = await legacy.made(first_party=A, second_party=B, session_expiry=value)
    assert session["duration"] == value


@pytest.mark.parametrize(
    "value", [SESSION_EXPIRY_RANGE[0] - 1, SESSION_EXPIRY_RANGE[1] + 1, "600", True]
)
async def test_session_expiry_outside_or_not_an_integer_is_refused(legacy, value):
    """session_expiry is not clamped: 59, 86401 or a non-integer is a 400 naming it."""
    status, body, _ = await legacy.call(
        "POST", json={"first_party": A, "second_party": B, "session_expiry": value}
    )
    assert _refused(status, body, "session_expiry"), body


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (LOW, LOW),
        (HIGH, HIGH),
        (LOW - 1, LOW),
        (1, LOW),
        (-5, LOW),
        (HIGH + 1, HIGH),
        (10**9, HIGH),
    ],
)
async def test_call_time_limit_bounds_and_clamps(legacy, sent, kept):
    """call_time_limit 60 and 86400 are kept; below the range it is 60, above it 86400."""
    session = await legacy.made(first_party=A, second_party=B, call_time_limit=sent)
    assert session["call_time_limit"] == kept


@pytest.mark.parametrize("sent", ["soon", "600", 600.5, True, [600], {"s": 1}])
async def test_an_invalid_call_time_limit_becomes_the_default(legacy, sent):
    """A call_time_limit that is no integer becomes 14400: never an error."""
    session = await legacy.made(first_party=A, second_party=B, call_time_limit=sent)
    assert session["call_time_limit"] == LEGACY_DEFAULTS["call_time_limit"]


async def test_recording_callback_url_of_1000_characters_is_taken(legacy):
    """A recording_callback_url of exactly 1,000 characters is kept."""
    url = URL + "/" + "a" * (MAX_URL_LENGTH - len(URL) - 1)
    assert len(url) == MAX_URL_LENGTH
    session = await legacy.made(first_party=A, second_party=B, recording_callback_url=url)
    assert session["recording_callback_url"] == url


async def test_recording_callback_url_over_1000_characters_is_refused(legacy):
    """One character more is a 400 naming recording_callback_url; nothing is made."""
    url = URL + "/" + "a" * (MAX_URL_LENGTH - len(URL))
    status, body, _ = await legacy.call(
        "POST", json={"first_party": A, "second_party": B, "recording_callback_url": url}
    )
    assert _refused(status, body, "recording_callback_url"), body
    _, page = await legacy.current.list()
    assert page["response"]["objects"] == []


async def test_recording_settings_are_kept(legacy):
    """record, record_file_format and recording_callback_method are stored as sent."""
    session = await legacy.made(
        first_party=A,
        second_party=B,
        record=True,
        record_file_format="wav",
        recording_callback_url=URL,
        recording_callback_method="GET",
    )
    assert session["record"] is True
    assert session["record_file_format"] == "wav"
    assert (session["recording_callback_url"], session["recording_callback_method"]) == (URL, "GET")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"first_party": A}, "second_party"),
        ({"second_party": B}, "first_party"),
        ({"first_party": A, "second_party": A}, "second_party"),
        ({"first_party": "12", "second_party": B}, "first_party"),
        ({"first_party": A, "second_party": B, "record": "maybe"}, "record"),
        ({"first_party": A, "second_party": B, "record_file_format": "ogg"}, "record_file_format"),
        (
            {"first_party": A, "second_party": B, "recording_callback_method": "PUT"},
            "recording_callback_method",
        ),
        (
            {"first_party": A, "second_party": B, "recording_callback_url": "ftp://x"},
            "recording_callback_url",
        ),
        ({"first_party": A, "second_party": B, "ring_timeout": 30}, "ring_timeout"),
    ],
)
async def test_other_rules_refuse_with_the_field_named(legacy, params, field):
    """Both parties are required and must differ; the other arguments are checked; an argument
    only the current API has is unknown here."""
    status, body, _ = await legacy.call("POST", json=params)
    assert _refused(status, body, field), body


# -- one API, two doors ------------------------------------------------------------------------


async def test_the_session_is_the_current_apis_session(legacy):
    """A legacy session is listed, read, updated and expired through the current API."""
    made = await legacy.create(first_party=A, second_party=B, session_expiry=600)
    uuid = made["session_uuid"]
    current = legacy.current
    _, page = await current.list(first_party=A)
    assert [s["session_uuid"] for s in page["response"]["objects"]] == [uuid]
    status, got, _ = await current.call("GET", uuid)
    assert got["response"]["virtual_number"] == made["virtual_number"].removeprefix("+")
    status, updated, _ = await current.call("POST", uuid, json={"call_time_limit": 120})
    assert (status, updated["session"]["call_time_limit"]) == (200, 120)
    assert (await current.call("DELETE", uuid))[0] == 200
    status, got, _ = await current.call("GET", uuid)
    assert got["response"]["status"] == "expired"


async def test_a_current_session_is_expired_by_the_legacy_delete(legacy):
    """The legacy delete ends a session the current create made."""
    made = await legacy.current.create(first_party=C, second_party=D)
    assert (await legacy.call("DELETE", made["session_uuid"]))[0] == 200
    _, page = await legacy.current.list(status="active")
    assert page["response"]["objects"] == []


async def test_busy_parties_are_shared_between_the_two_creates(legacy):
    """The number pool is one: two active sessions of a pair through either door get two numbers."""
    first = await legacy.create(first_party=A, second_party=B)
    second = await legacy.current.create(first_party=A, second_party=B)
    assert first["virtual_number"] != second["virtual_number"]


async def test_one_rate_limit_and_one_request_log(
    masking_emulator_factory: EmulatorFactory, emulator_http_for
):
    """Legacy and current requests count against one account limit and land in one log."""
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=ServerRateLimit(2, 60.0)))
    legacy = _doors(emulator_http_for, emulator)
    assert (await legacy.call("POST", json={"first_party": A, "second_party": B}))[0] == 201
    assert (await legacy.current.call("GET"))[0] == 200
    status, _, headers = await legacy.call("POST", json={"first_party": C, "second_party": D})
    assert status == 429
    assert "Retry-After" in headers
    paths = [(entry.method, entry.path, entry.status) for entry in emulator.request_log]
    root = f"/v1/Account/{DEFAULT_AUTH_ID}"
    assert paths == [
        ("POST", f"{root}/Session/", 201),
        ("GET", f"{root}/Masking/Session/", 200),
        ("POST", f"{root}/Session/", 429),
    ]


@pytest.mark.parametrize(("operation", "method"), [("create", "POST"), ("expire", "DELETE")])
async def test_fault_rules_of_an_operation_meet_its_legacy_door(
    masking_emulator_factory: EmulatorFactory, emulator_http_for, operation, method
):
    """A fault rule on ``create`` (``expire``) also fires on the legacy create (delete)."""
    emulator = await masking_emulator_factory()
    legacy = _doors(emulator_http_for, emulator)
    made = await legacy.create(first_party=A, second_party=B)
    emulator.add_fault(FaultRule(kind="error", operation=operation, status=503, count=1))
    target = made["session_uuid"] if method == "DELETE" else ""
    params = {"json": {"first_party": C, "second_party": D}} if method == "POST" else {}
    status, body, _ = await legacy.call(method, target, **params)
    assert status == 503
    assert "injected" in body["error"]
    assert (await legacy.call(method, target, **params))[0] in (200, 201)


async def test_the_control_plane_drives_legacy_sessions(legacy, masking_emulator):
    """Over /emulator/: a legacy fault rule, the clock expiring a session at its legacy default,
    and the request log all act on the legacy door as on the current one."""
    control = legacy.legacy.session
    base = masking_emulator.base_url + "/emulator"
    rule = {"kind": "error", "operation": "create", "status": 502, "count": 1}
    async with control.post(f"{base}/faults", json=rule) as answer:
        assert answer.status == 201
    assert (await legacy.call("POST", json={"first_party": A, "second_party": B}))[0] == 502
    made = await legacy.create(first_party=A, second_party=B)
    expiry = LEGACY_DEFAULTS["session_expiry"]
    for seconds, status in ((expiry - 1, "active"), (1, "expired")):
        async with control.post(f"{base}/clock", json={"advance": seconds}) as answer:
            assert answer.status == 200
        _, found, _ = await legacy.current.call("GET", made["session_uuid"])
        assert found["response"]["status"] == status
    async with control.get(f"{base}/requests") as answer:
        logged = json.dumps(await answer.json())
    assert f"/v1/Account/{DEFAULT_AUTH_ID}/Session/" in logged


async def test_credentials_are_checked_as_on_the_current_paths(legacy):
    """A wrong token is a 401 in the envelope, nothing made."""
    status, body, _ = await legacy.call(
        "POST", json={"first_party": A, "second_party": B}, auth=(DEFAULT_AUTH_ID, "wrong")
    )
    assert status == 401
    assert set(body) == {"api_id", "error"}


async def test_the_legacy_paths_answer_only_their_methods(legacy):
    """GET on the legacy collection is a 405 in the envelope: only create and delete exist."""
    status, body, headers = await legacy.call("GET")
    assert status == 405
    assert "POST" in headers["Allow"]
    assert set(body) == {"api_id", "error"}


# -- the rule itself, by search ----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


@given(value=JSON)
def test_call_time_limit_is_never_refused_and_always_in_range(value: Any) -> None:
    """Whatever JSON call_time_limit carries, the legacy create takes it: an integer clamped
    into the range, anything else (null included) the default."""
    params = {"first_party": A, "second_party": B, "call_time_limit": value}
    clean, violations = check_legacy_create(params)
    assert violations == []
    if isinstance(value, int) and not isinstance(value, bool):
        assert clean["call_time_limit"] == min(max(value, LOW), HIGH)
    else:
        assert clean["call_time_limit"] == LEGACY_DEFAULTS["call_time_limit"]
