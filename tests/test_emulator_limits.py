"""The per-account rate limit (429 + Retry-After, on the emulator's clock) and the request log."""

from __future__ import annotations

from itertools import islice

import pytest

from masking_async.durations import parse_seconds
from masking_async.emulator import Account, EmulatorConfig, ServerRateLimit
from masking_async.phones import party_numbers

A, B = islice(party_numbers("US", start=300), 2)
OTHER = Account("MAOTHERACCOUNT000001", "other-token")


@pytest.fixture
async def limited(masking_emulator_factory, emulator_http_for):
    """An emulator allowing 3 requests per 5 s per account, and HTTP to two of its accounts."""
    emulator = await masking_emulator_factory(
        EmulatorConfig(
            rate_limit=ServerRateLimit(3, 5.0),
            accounts=[EmulatorConfig().accounts[0], OTHER],
            request_log_size=50,
        )
    )
    other = emulator_http_for(emulator, auth_id=OTHER.auth_id, auth_token=OTHER.auth_token)
    return emulator_http_for(emulator), other


async def _statuses(api, count):
    return [(await api.call("GET"))[0] for _ in range(count)]


async def test_over_the_limit_is_429_with_retry_after(limited):
    """The fourth request in 5 s is a 429 with an error body and a whole-second Retry-After."""
    api, _ = limited
    assert await _statuses(api, 3) == [200, 200, 200]
    status, body, headers = await api.call("GET")
    assert status == 429
    assert set(body) == {"api_id", "error"}
    assert headers["Retry-After"] == "5"
    api.emulator.clock.advance(2.5)
    _, _, headers = await api.call("GET")
    assert headers["Retry-After"] == "3"  # rounded up, never below 1


async def test_window_slides_on_the_clock(limited):
    """Each accepted request frees its slot exactly one window after it arrived."""
    api, _ = limited
    clock = api.emulator.clock
    for _ in range(3):
        assert (await api.call("GET"))[0] == 200
        clock.advance(1)
    clock.advance(1.9)  # t=4.9: the requests at 0, 1, 2 are all in the window
    assert (await api.call("GET"))[0] == 429
    clock.advance(0.1)  # t=5.0: the one at 0 has left
    assert (await api.call("GET"))[0] == 200
    assert (await api.call("GET"))[0] == 429


async def test_limit_is_per_account(limited):
    """One account's burst does not throttle another."""
    api, other = limited
    assert await _statuses(api, 4) == [200, 200, 200, 429]
    assert await _statuses(other, 3) == [200, 200, 200]


async def test_failed_auth_is_not_counted(limited):
    """Requests refused for credentials do not use up the account's allowance."""
    api, _ = limited
    for _ in range(5):
        assert (await api.call("GET", auth=(api.auth_id, "wrong")))[0] == 401
    assert await _statuses(api, 3) == [200, 200, 200]


async def test_request_log_records_every_arrival(limited):
    """Every request is logged with arrival time, account, method, path and status."""
    api, _ = limited
    clock = api.emulator.clock
    await api.call("POST", json={"first_party": A, "second_party": B})
    clock.advance(0.25)
    await _statuses(api, 3)
    entries = api.emulator.request_log.entries()
    assert [(e.method, e.status) for e in entries] == [
        ("POST", 201),
        ("GET", 200),
        ("GET", 200),
        ("GET", 429),
    ]
    assert entries[0].at == 0.0
    assert entries[1].at == 0.25
    assert {e.auth_id for e in entries} == {api.auth_id}
    assert entries[1].path == f"/v1/Account/{api.auth_id}/Masking/Session/"
    assert entries[3].fault == "rate_limit"
    api.emulator.request_log.clear()
    assert len(api.emulator.request_log) == 0


async def test_accepted_requests_never_exceed_the_limit_in_any_window(limited):
    """Counted from the log alone: no 5 s window holds more than 3 accepted requests."""
    api, _ = limited
    for _ in range(40):
        await api.call("GET")
        api.emulator.clock.advance(0.7)
    accepted = [e.at for e in api.emulator.request_log if e.status == 200]
    assert len(accepted) >= 12
    for start in accepted:
        assert sum(1 for at in accepted if start <= at < start + 5.0) <= 3


async def test_request_log_is_bounded(limited):
    """The log keeps only its configured number of newest entries."""
    api, _ = limited
    for _ in range(60):
        await api.call("GET", auth=(api.auth_id, "wrong"))
    assert len(api.emulator.request_log) == 50


async def test_rate_limit_off_accepts_any_burst(emulator_http):
    """With the limit off (the fixture's default) a burst is never throttled."""
    assert set(await _statuses(emulator_http, 50)) == {200}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300/5s", ServerRateLimit(300, 5.0)),
        ("10/s", ServerRateLimit(10, 1.0)),
        ("2/500ms", ServerRateLimit(2, 0.5)),
        ("60/1m", ServerRateLimit(60, 60.0)),
        ("off", None),
    ],
)
def test_rate_limit_parse(text, expected):
    """The --rate-limit text becomes the same value Python code would build."""
    assert ServerRateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["300", "x/5s", "3/-5s", "3/5 parsecs"])
def test_rate_limit_parse_refuses_nonsense(text):
    """A rate that is not N/WINDOW is a ValueError that says what is expected."""
    with pytest.raises(ValueError, match=r"must look like|is not a duration"):
        ServerRateLimit.parse(text)


def test_parse_seconds_units():
    """Durations take ms, s, m, h or bare seconds."""
    assert [parse_seconds(t) for t in ("20ms", "1.5s", "2m", "1h", "3")] == [
        0.02,
        1.5,
        120.0,
        3600.0,
        3.0,
    ]
