"""The virtual number pool: geomatch, sharing a number, busy parties, cool-off, subaccounts."""

from __future__ import annotations

from itertools import islice

import phonenumbers
import pytest

from masking_async.emulator import EmulatorConfig, PoolConfig, default_numbers
from masking_async.phones import party_numbers, party_pairs

A, B, C, D = islice(party_numbers("US", start=900), 4)
GB_PARTY, GB_OTHER = islice(party_numbers("GB"), 2)
IN_PARTY, IN_OTHER = islice(party_numbers("IN"), 2)
DE_PARTY = "+49301234567"
NUMBERS = default_numbers(per_country=3)
US1, US2, US3 = (n for n in NUMBERS if n.startswith("+1212"))
SUB = "SA" + "7" * 18


@pytest.fixture
async def pool_http(masking_emulator_factory, emulator_http_for):
    """Raw HTTP to an emulator whose pool is small enough to exhaust: 2 US numbers."""

    async def start(numbers=(US1, US2), reserved=None):
        pool = PoolConfig(numbers=numbers, subaccount_numbers=reserved or {})
        emulator = await masking_emulator_factory(EmulatorConfig(pool=pool, rate_limit=None))
        return emulator_http_for(emulator)

    return start


async def _number(api, **params):
    status, body, _ = await api.call("POST", json=params)
    return (body["virtual_number"] if status == 201 else body["error"]), status


def test_default_pool_is_valid_and_covers_us_gb_in():
    """Every default number is valid E.164, with plenty in the US, GB and India."""
    regions: dict[str, int] = {}
    for number in default_numbers():
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        region = phonenumbers.region_code_for_number(parsed)
        regions[region] = regions.get(region, 0) + 1
    assert all(regions.get(region, 0) >= 50 for region in ("US", "GB", "IN"))


async def test_default_pool_serves_thousands_of_distinct_pairs(masking_emulator):
    """Thousands of distinct pairs never exhaust the default pool (checked through the store)."""
    for first, second in party_pairs(3000, start=5000):
        masking_emulator.store.create(
            masking_emulator.config.accounts[0].auth_id,
            {"first_party": first, "second_party": second},
        )


@pytest.mark.parametrize(
    ("first", "second", "prefix"),
    [(A, B, "+1212"), (GB_PARTY, GB_OTHER, "+44"), (IN_PARTY, IN_OTHER, "+91")],
)
async def test_geomatch_picks_a_number_in_the_first_partys_country(
    emulator_http, first, second, prefix
):
    """With geomatch (the default) the number is in the first party's country."""
    body = await emulator_http.create(first_party=first, second_party=second)
    assert body["virtual_number"].startswith(prefix)


async def test_geomatch_without_numbers_in_that_country_is_400(emulator_http):
    """No number in the first party's country: 400 naming geomatch; geomatch=false works."""
    status, body, _ = await emulator_http.call(
        "POST", json={"first_party": DE_PARTY, "second_party": A}
    )
    assert status == 400
    assert "DE" in body["error"]
    assert "geomatch" in body["error"]
    body = await emulator_http.create(first_party=DE_PARTY, second_party=A, geomatch=False)
    assert body["virtual_number"].startswith("+")


async def test_one_number_serves_many_distinct_pairs(pool_http):
    """Different pairs share a number: a one-number pool serves many active sessions at once."""
    api = await pool_http(numbers=(US1,))
    pairs = party_pairs(20, start=100)
    numbers = {(await _number(api, first_party=f, second_party=s)) for f, s in pairs}
    assert numbers == {(US1, 201)}


async def test_a_party_is_never_twice_on_one_number(pool_http):
    """A party busy on a number gets another; when every number is busy, a clear 400."""
    api = await pool_http()
    first = (await api.create(first_party=A, second_party=B))["session_uuid"]
    assert await _number(api, first_party=A, second_party=C) == (US2, 201)
    error, status = await _number(api, first_party=D, second_party=A)
    assert status == 400
    assert "no virtual number available" in error
    await api.call("DELETE", first)
    assert await _number(api, first_party=D, second_party=A) == (US1, 201)


async def test_cooloff_keeps_a_number_from_the_same_party(pool_http):
    """After a session with a cool-off ends, its parties cannot get its number until it passes."""
    api = await pool_http(numbers=(US1,))
    body = await api.create(first_party=A, second_party=B, virtual_number_cooloff_period=300)
    await api.call("DELETE", body["session_uuid"])
    assert (await _number(api, first_party=A, second_party=C))[1] == 400
    assert await _number(api, first_party=C, second_party=D) == (US1, 201)  # others may use it
    api.emulator.clock.advance(299)
    assert (await _number(api, first_party=B, second_party=D))[1] == 400
    api.emulator.clock.advance(1)
    assert await _number(api, first_party=A, second_party=B) == (US1, 201)


async def test_cooloff_starts_when_a_session_expires_by_time(pool_http):
    """A session that runs out also starts its cool-off, from its expiry time."""
    api = await pool_http(numbers=(US1,))
    await api.create(
        first_party=A, second_party=B, session_expiry=60, virtual_number_cooloff_period=100
    )
    api.emulator.clock.advance(100)  # expired at 60, cooling off until 160
    assert (await _number(api, first_party=A, second_party=C))[1] == 400
    api.emulator.clock.advance(60)
    assert await _number(api, first_party=A, second_party=C) == (US1, 201)


async def test_subaccount_numbers_are_reserved(pool_http):
    """A subaccount's numbers go only to its sessions; others draw from the shared pool."""
    api = await pool_http(numbers=(US1,), reserved={SUB: (US2, US3)})
    assert await _number(api, first_party=A, second_party=B, subaccount=SUB) == (US2, 201)
    assert await _number(api, first_party=A, second_party=B) == (US1, 201)
    other = "SA" + "8" * 18
    assert await _number(api, first_party=C, second_party=D, subaccount=other) == (US1, 201)
    assert await _number(api, first_party=A, second_party=C, subaccount=SUB) == (US3, 201)
    error, status = await _number(api, first_party=A, second_party=D, subaccount=SUB)
    assert status == 400
    assert "no virtual number available" in error


async def test_single_party_update_refuses_a_party_busy_on_the_number(pool_http):
    """Adding a second party already busy on the session's number is a 400."""
    api = await pool_http(numbers=(US1,))
    await api.create(first_party=C, second_party=D)
    uuid = (await api.create(first_party=A, create_session_with_single_party=True))["session_uuid"]
    status, body, _ = await api.call("POST", uuid, json={"second_party": C})
    assert status == 400
    assert "second_party" in body["error"]
    assert "already in an active session" in body["error"]


def test_pool_config_refuses_invalid_and_repeated_numbers():
    """A pool with an invalid or repeated number fails at start, naming it."""
    from masking_async.emulator.pool import NumberPool

    with pytest.raises(ValueError, match="12345"):
        NumberPool(PoolConfig(numbers=("+12345",)))
    with pytest.raises(ValueError, match="twice"):
        NumberPool(PoolConfig(numbers=(US1,), subaccount_numbers={SUB: (US1,)}))
