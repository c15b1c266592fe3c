"""The control plane under /emulator/, driven over plain HTTP as any language's tests would."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

import aiohttp
import pytest

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    Account,
    Emulator,
    EmulatorConfig,
    ManualClock,
    SystemClock,
)
from masking_async.emulator.snapshot import SnapshotError
from masking_async.phones import party_numbers

A, B, C, D = islice(party_numbers("US", start=1800), 4)
OTHER = Account("MAOTHERACCOUNT000002", "other-token")
TOKEN = "s3cret-admin"


class Control:
    """Raw JSON requests to one emulator's control plane."""

    def __init__(self, emulator: Emulator, http: aiohttp.ClientSession, token: str | None) -> None:
        self.emulator, self.http, self.token = emulator, http, token

    async def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None if body is None else json.dumps(body)
        url = f"{self.emulator.base_url}/emulator{path}"
        async with self.http.request(method, url, data=data, headers=headers) as response:
            return response.status, await response.json(content_type=None)


@pytest.fixture
async def control(masking_emulator_factory, emulator_http_for):
    """An emulator with two accounts, raw HTTP to its API and its control plane."""
    emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, accounts=[EmulatorConfig().accounts[0], OTHER])
    )
    async with aiohttp.ClientSession() as http:
        yield Control(emulator, http, None), emulator_http_for(emulator)


async def _count(api) -> int:
    _, body = await api.list()
    return int(body["response"]["meta"]["total_count"])


async def test_reset_forgets_every_session(control):
    """POST /emulator/reset empties every account and the request log."""
    ctl, api = control
    await api.create(first_party=A, second_party=B)
    assert await ctl("POST", "/reset") == (200, {"reset": "all"})
    assert await _count(api) == 0
    assert len(ctl.emulator.request_log) == 1  # only the list just made


async def test_reset_one_account_leaves_the_others(control, emulator_http_for):
    """{"account": ID} resets that account only; an unknown account is a 404."""
    ctl, api = control
    other = emulator_http_for(ctl.emulator, auth_id=OTHER.auth_id, auth_token=OTHER.auth_token)
    await api.create(first_party=A, second_party=B)
    await other.create(first_party=A, second_party=B)
    assert (await ctl("POST", "/reset", {"account": OTHER.auth_id}))[0] == 200
    assert (await _count(api), await _count(other)) == (1, 0)
    status, body = await ctl("POST", "/reset", {"account": "MANOSUCHACCOUNT00000"})
    assert (status, set(body)) == (404, {"api_id", "error"})


async def test_state_dumps_and_loads_as_json(control):
    """GET /emulator/state, reset, PUT it back: the same sessions, answering the same way."""
    ctl, api = control
    uuid = (await api.create(first_party=A, second_party=B, record=True))["session_uuid"]
    before = (await api.call("GET", uuid))[1]["response"]
    status, state = await ctl("GET", "/state")
    assert status == 200
    assert state["accounts"][DEFAULT_AUTH_ID]["sessions"][0]["session_uuid"] == uuid
    await ctl("POST", "/reset")
    assert (await api.call("GET", uuid))[0] == 404
    status, _ = await ctl("PUT", "/state", state)
    assert status == 200
    after = (await api.call("GET", uuid))[1]["response"]
    assert after == before
    # the loaded session holds its number for its parties, as before
    assert (await ctl("GET", "/state"))[1] == state


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a JSON object"),
        ({"version": 9, "accounts": {}}, "version"),
        ({"version": 1, "accounts": {"MANOSUCHACCOUNT00000": {}}}, "not an account"),
        (
            {"version": 1, "accounts": {DEFAULT_AUTH_ID: {"sessions": [{"session_uuid": "u"}]}}},
            "sessions[0].created_time",
        ),
    ],
)
async def test_a_bad_state_document_is_refused_by_place(control, document, message):
    """An invalid document is a 400 naming where it is wrong, and changes nothing."""
    ctl, api = control
    await api.create(first_party=A, second_party=B)
    status, body = await ctl("PUT", "/state", document)
    assert status == 400
    assert message in body["error"]
    assert await _count(api) == 1


async def test_the_clock_advances_over_http(control):
    """POST /emulator/clock {"advance": 3600} expires an hour-long session without waiting."""
    ctl, api = control
    uuid = (await api.create(first_party=A, second_party=B, session_expiry=3600))["session_uuid"]
    status, clock = await ctl("GET", "/clock")
    assert (status, clock["manual"], clock["now"]) == (
        200,
        True,
        "2024-02-01T06:00:00.000000+00:00",
    )
    status, clock = await ctl("POST", "/clock", {"advance": 3600})
    assert (status, clock["now"]) == (200, "2024-02-01T07:00:00.000000+00:00")
    assert (await api.call("GET", uuid))[1]["response"]["status"] == "expired"


@pytest.mark.parametrize("body", [{"advance": -1}, {"advance": "1h"}, {"to": 5}, [3600]])
async def test_the_clock_refuses_nonsense(control, body):
    """Negative, non-numeric or unknown clock moves are a 400."""
    ctl, _ = control
    assert (await ctl("POST", "/clock", body))[0] == 400


async def test_a_system_clock_cannot_be_advanced(masking_emulator_factory):
    """With the system clock, advancing is a 409 that says how to get a manual one."""
    emulator = await masking_emulator_factory(clock=SystemClock())
    async with aiohttp.ClientSession() as http:
        status, body = await Control(emulator, http, None)("POST", "/clock", {"advance": 1})
    assert status == 409
    assert "--clock manual" in body["error"]


async def test_fault_rules_are_added_listed_and_removed_over_http(control):
    """POST a rule, see it fail requests and count hits, DELETE it, requests succeed again."""
    ctl, api = control
    status, rule = await ctl(
        "POST", "/faults", {"kind": "error", "operation": "create", "status": 503, "count": 5}
    )
    assert (status, rule["status"], rule["hits"]) == (201, 503, 0)
    assert (await api.call("POST", json={"first_party": A, "second_party": B}))[0] == 503
    _, listed = await ctl("GET", "/faults")
    assert [(r["id"], r["hits"]) for r in listed["rules"]] == [(rule["id"], 1)]
    assert (await ctl("DELETE", f"/faults/{rule['id']}"))[0] == 200
    assert (await ctl("DELETE", f"/faults/{rule['id']}"))[0] == 404
    assert (await api.call("POST", json={"first_party": A, "second_party": B}))[0] == 201


async def test_clearing_fault_rules(control):
    """DELETE /emulator/faults removes every rule."""
    ctl, _ = control
    await ctl("POST", "/faults", {"kind": "drop"})
    await ctl("POST", "/faults", {"kind": "stall", "operation": "get"})
    assert await ctl("DELETE", "/faults") == (200, {"rules": []})
    assert (await ctl("GET", "/faults"))[1] == {"rules": []}


@pytest.mark.parametrize(
    "rule",
    [{"kind": "throttle", "phase": "after"}, {"kind": "error", "status": 429}, {"colour": "red"}],
)
async def test_a_bad_fault_rule_is_refused(control, rule):
    """An applied throttle, an error 429 or unknown fields are a 400 with the rule broken."""
    ctl, _ = control
    status, body = await ctl("POST", "/faults", rule)
    assert status == 400
    assert body["error"]


async def test_the_request_log_over_http(control):
    """GET /emulator/requests lists method, path, status, account and timing; it can be cleared."""
    ctl, api = control
    uuid = (await api.create(first_party=A, second_party=B))["session_uuid"]
    await api.call("GET", "no-such-session")
    _, body = await ctl("GET", f"/requests?account={DEFAULT_AUTH_ID}")
    got = [(r["method"], r["status"], r["auth_id"]) for r in body["requests"]]
    assert got == [("POST", 201, DEFAULT_AUTH_ID), ("GET", 404, DEFAULT_AUTH_ID)]
    assert all(r["elapsed"] >= 0 for r in body["requests"])
    assert body["requests"][0]["path"].endswith("/Masking/Session/")
    _, last = await ctl("GET", "/requests?limit=1")
    assert [r["status"] for r in last["requests"]] == [404]
    assert uuid not in json.dumps(last)
    await ctl("DELETE", "/requests")
    assert (await ctl("GET", "/requests"))[1] == {"requests": []}


async def test_control_requests_meet_no_faults_and_stay_out_of_the_log(control):
    """A drop-everything rule does not touch /emulator/ requests, which are not logged."""
    ctl, _ = control
    await ctl("POST", "/faults", {"kind": "drop"})
    for _ in range(3):
        assert (await ctl("GET", "/state"))[0] == 200
    assert len(ctl.emulator.request_log) == 0


async def test_an_admin_token_guards_the_control_plane(masking_emulator_factory):
    """With admin_token, a request without the bearer token is a 401; with it, a 200."""
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=None, admin_token=TOKEN))
    async with aiohttp.ClientSession() as http:
        status, body = await Control(emulator, http, None)("GET", "/clock")
        assert (status, set(body)) == (401, {"api_id", "error"})
        assert (await Control(emulator, http, "wrong")("GET", "/clock"))[0] == 401
        assert (await Control(emulator, http, TOKEN)("GET", "/clock"))[0] == 200
    assert TOKEN not in repr(emulator.config)


async def test_unknown_control_paths_are_json_404(control):
    """A path under /emulator/ that does not exist is a JSON 404, a wrong method a JSON 405."""
    ctl, _ = control
    assert (await ctl("GET", "/nothing"))[0] == 404
    assert (await ctl("PATCH", "/clock"))[0] == 405


async def test_state_file_is_saved_on_stop_and_loaded_on_start(tmp_path):
    """--state FILE: sessions survive a restart, and a manual clock resumes where it stopped."""
    path = tmp_path / "state.json"
    config = EmulatorConfig(rate_limit=None, state_file=path)
    clock = ManualClock()
    async with Emulator(config, clock=clock) as first:
        made = first.store.create(DEFAULT_AUTH_ID, {"first_party": A, "second_party": B})
        clock.advance(600)
    assert json.loads(path.read_text())["accounts"][DEFAULT_AUTH_ID]["sessions"]
    later = ManualClock()
    async with Emulator(config, clock=later) as second:
        assert second.store.get(DEFAULT_AUTH_ID, made.uuid).created == made.created
        assert later.now() == clock.now()
        second.reset()
    assert json.loads(path.read_text())["accounts"][DEFAULT_AUTH_ID]["sessions"] == []


async def test_a_corrupt_state_file_is_a_clear_error(tmp_path):
    """A state file that is not a state document fails the start with its name in the error."""
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(SnapshotError, match=r"state\.json"):
        async with Emulator(EmulatorConfig(state_file=path)):
            pass


async def test_the_python_mirror(masking_emulator):
    """reset, dump_state, load_state and advance_clock do on the object what HTTP does."""
    emulator = masking_emulator
    made = emulator.store.create(DEFAULT_AUTH_ID, {"first_party": C, "second_party": D})
    state = emulator.dump_state()
    emulator.reset()
    assert emulator.dump_state()["accounts"][DEFAULT_AUTH_ID]["sessions"] == []
    emulator.load_state(state)
    emulator.advance_clock(3600)
    assert emulator.store.get(DEFAULT_AUTH_ID, made.uuid).status == "expired"
    with pytest.raises(TypeError):
        Emulator(clock=SystemClock()).advance_clock(1)
