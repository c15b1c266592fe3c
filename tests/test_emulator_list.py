"""List: every filter, the 7-day window and 30-day limit, newest-first pages and their meta."""

from __future__ import annotations

from itertools import islice
from urllib.parse import parse_qs, urlsplit

import pytest

from masking_async.phones import party_numbers

A, B, C, D = islice(party_numbers("US", start=700), 4)
SUB = "SA" + "5" * 18
DAY = 86400


@pytest.fixture
async def three(emulator_http):
    """Three sessions a minute apart: (A,B) 10 min, (C,D) 20 min on a subaccount, (A,C) 30 min."""
    api, clock = emulator_http, emulator_http.emulator.clock
    made = [await api.create(first_party=A, second_party=B, session_expiry=600)]
    clock.advance(60)
    made.append(
        await api.create(first_party=C, second_party=D, session_expiry=1200, subaccount=SUB)
    )
    clock.advance(60)
    made.append(await api.create(first_party=A, second_party=C, session_expiry=1800))
    return [m["session_uuid"] for m in made], [m["virtual_number"] for m in made]


async def _uuids(api, **filters):
    status, body = await api.list(**filters)
    assert status == 200, body
    return [o["session_uuid"] for o in body["response"]["objects"]]


async def test_list_is_newest_first_with_resource_uris(emulator_http, three):
    """Sessions come newest first, each with its resource_uri."""
    uuids, _ = three
    _, body = await emulator_http.list()
    objects = body["response"]["objects"]
    assert [o["session_uuid"] for o in objects] == uuids[::-1]
    auth_id = emulator_http.auth_id
    assert objects[0]["resource_uri"] == f"/v1/Account/{auth_id}/Masking/Session/{uuids[2]}/"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"first_party": A}, [2, 0]),
        ({"first_party": A[1:]}, [2, 0]),
        ({"second_party": C}, [2]),
        ({"first_party": A, "second_party": B}, [0]),
        ({"subaccount": SUB}, [1]),
        ({"status": "all"}, [2, 1, 0]),
        ({"duration": 1200}, [1]),
        ({"duration__gt": 600}, [2, 1]),
        ({"duration__gte": 1200}, [2, 1]),
        ({"duration__lt": 1200}, [0]),
        ({"duration__lte": 1200}, [1, 0]),
        ({"created_time": "2024-02-01 06:01:00"}, [1]),
        ({"created_time__gt": "2024-02-01 06:01"}, [2]),
        ({"created_time__gte": "2024-02-01 06:01"}, [2, 1]),
        ({"created_time__lt": "2024-02-01 06:01:00"}, [0]),
        ({"created_time__lte": "2024-02-01 06:01:00.000000"}, [1, 0]),
        ({"expiry_time": "2024-02-01 06:21:00"}, [1]),
        ({"expiry_time__gt": "2024-02-01 06:21"}, [2]),
        ({"expiry_time__gte": "2024-02-01 06:21"}, [2, 1]),
        ({"expiry_time__lt": "2024-02-01 06:21"}, [0]),
        ({"expiry_time__lte": "2024-02-01 06:21"}, [1, 0]),
        ({"first_party": D}, []),
    ],
)
async def test_each_filter(emulator_http, three, filters, expected):
    """Each filter of the spec selects exactly the sessions it names."""
    uuids, _ = three
    assert await _uuids(emulator_http, **filters) == [uuids[i] for i in expected]


async def test_virtual_number_filter_with_or_without_plus(emulator_http, three):
    """virtual_number matches with or without the leading +."""
    uuids, numbers = three
    expected = [u for u, n in zip(uuids, numbers, strict=True) if n == numbers[0]][::-1]
    assert await _uuids(emulator_http, virtual_number=numbers[0]) == expected
    assert await _uuids(emulator_http, virtual_number=numbers[0][1:]) == expected


async def test_status_filter_follows_the_clock(emulator_http, three):
    """status=active/expired split sessions by whether their expiry has passed."""
    uuids, _ = three
    emulator_http.emulator.clock.advance(600)  # the first (10 min) has run out
    assert await _uuids(emulator_http, status="active") == uuids[:0:-1]
    assert await _uuids(emulator_http, status="expired") == [uuids[0]]


async def test_pagination_meta_and_links_keep_filters(emulator_http):
    """limit/offset page newest first; meta counts all and links keep the filters."""
    api = emulator_http
    made = []
    for first, second in zip(*[iter(islice(party_numbers("GB"), 10))] * 2, strict=True):
        made.append((await api.create(first_party=first, second_party=second))["session_uuid"])
        api.emulator.clock.advance(1)
    newest = made[::-1]
    _, body = await api.list(limit=2, offset=2, status="active")
    meta = body["response"]["meta"]
    assert [o["session_uuid"] for o in body["response"]["objects"]] == newest[2:4]
    assert (meta["limit"], meta["offset"], meta["total_count"]) == (2, 2, 5)
    base = f"/v1/Account/{api.auth_id}/Masking/Session/"
    for link, offset in ((meta["next"], "4"), (meta["previous"], "0")):
        parts = urlsplit(link)
        assert parts.path == base
        assert parse_qs(parts.query) == {"limit": ["2"], "offset": [offset], "status": ["active"]}
    _, last = await api.list(limit=2, offset=4)
    assert last["response"]["meta"]["next"] is None
    assert [o["session_uuid"] for o in last["response"]["objects"]] == newest[4:]
    _, first = await api.list()
    assert first["response"]["meta"]["previous"] is None
    assert first["response"]["meta"]["limit"] == 20


async def test_default_window_is_the_last_seven_days(emulator_http, three):
    """Without created_time only the clock's last 7 days are listed; a filter reaches older."""
    uuids, _ = three
    emulator_http.emulator.clock.advance(7 * DAY)
    assert await _uuids(emulator_http) == [uuids[2]]  # created exactly 7 days ago: still in
    emulator_http.emulator.clock.advance(1)
    assert await _uuids(emulator_http) == []
    older = await _uuids(emulator_http, created_time__gte="2024-02-01 00:00")
    assert older == uuids[::-1]
    assert await _uuids(emulator_http, created_time__lte="2024-02-02 00:00") == uuids[::-1]


@pytest.mark.parametrize(
    "filters",
    [
        {"created_time__gte": "2024-01-01 00:00"},
        {"created_time__gt": "2023-12-01 00:00", "created_time__lt": "2024-01-15 00:00"},
        {"expiry_time__gt": "2023-12-01 00:00", "expiry_time__lt": "2024-01-15 00:00"},
    ],
)
async def test_ranges_wider_than_thirty_days_are_400(emulator_http, filters):
    """A created_time (or expiry_time) range spanning more than 30 days is refused."""
    status, body = await emulator_http.list(**filters)
    assert status == 400
    assert "30 days" in body["error"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"limit": 0}, "limit: must be between 1 and 20"),
        ({"limit": 21}, "limit: must be between 1 and 20"),
        ({"offset": -1}, "offset: must be a non-negative integer"),
        ({"status": "paused"}, "status: must be one of active, expired, all"),
        ({"created_time": "yesterday"}, "created_time: must be a time"),
        ({"duration__gt": "long"}, "duration__gt: must be a non-negative integer"),
        ({"first_party": "123"}, "first_party: must be a valid phone number"),
        ({"colour": "red"}, "colour: is not a known filter"),
    ],
)
async def test_bad_filters_are_400(emulator_http, filters, expected):
    """Each bad query parameter is refused with its name and rule."""
    status, body = await emulator_http.list(**filters)
    assert status == 400
    assert expected in body["error"]
