"""The store without HTTP: the operations, lazy expiry, and the indexes staying consistent."""

from __future__ import annotations

from itertools import islice

import pytest

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    EmulatorConfig,
    InvalidOperation,
    ManualClock,
    SessionNotFound,
    Store,
)
from masking_async.emulator.records import _OneOrMany
from masking_async.phones import party_numbers

A, B, C, D = islice(party_numbers("US", start=2100), 4)


@pytest.fixture
def store() -> Store:
    """A store on a ManualClock with the default account and pool."""
    config = EmulatorConfig()
    return Store(ManualClock(), config.accounts, config.pool, seed=3)


def test_operations_work_without_http(store):
    """Create, get, update, list and expire are plain method calls."""
    record = store.create(DEFAULT_AUTH_ID, {"first_party": A, "second_party": B})
    assert store.get(DEFAULT_AUTH_ID, record.uuid) is record
    store.update(DEFAULT_AUTH_ID, record.uuid, {"record": True})
    assert record.options == {"record": True}
    assert list(store.list(DEFAULT_AUTH_ID, {"first_party": A}).objects) == [record]
    store.expire(DEFAULT_AUTH_ID, record.uuid)
    assert record.status == "expired"
    with pytest.raises(SessionNotFound):
        store.get(DEFAULT_AUTH_ID, "nope")
    with pytest.raises(InvalidOperation, match="expired"):
        store.update(DEFAULT_AUTH_ID, record.uuid, {"record": False})


def test_lengthened_session_outlives_its_old_expiry(store):
    """After session_expiry grows, the stale heap entry does not expire the session early."""
    record = store.create(
        DEFAULT_AUTH_ID, {"first_party": A, "second_party": B, "session_expiry": 60}
    )
    store.update(DEFAULT_AUTH_ID, record.uuid, {"session_expiry": 600})
    store.clock.advance(300)
    assert store.get(DEFAULT_AUTH_ID, record.uuid).status == "active"
    store.clock.advance(300)
    assert store.get(DEFAULT_AUTH_ID, record.uuid).status == "expired"


def test_expired_parties_are_free_again(store):
    """A party whose session expired by time is no longer busy on that number."""
    first = store.create(
        DEFAULT_AUTH_ID, {"first_party": A, "second_party": B, "session_expiry": 60}
    )
    store.clock.advance(60)
    again = store.create(DEFAULT_AUTH_ID, {"first_party": A, "second_party": B})
    state = store.account(DEFAULT_AUTH_ID)
    assert state is not None
    assert state.busy.get(A) == [again.virtual_number]
    assert first.status == "expired"


def test_party_list_stays_newest_first_after_a_party_update(store):
    """A party added to an older single-party session still lists in creation order."""
    old = store.create(
        DEFAULT_AUTH_ID, {"first_party": A, "create_session_with_single_party": True}
    )
    store.clock.advance(10)
    new = store.create(DEFAULT_AUTH_ID, {"first_party": C, "second_party": D})
    store.update(DEFAULT_AUTH_ID, old.uuid, {"second_party": C})
    page = store.list(DEFAULT_AUTH_ID, {"second_party": C})
    assert list(page.objects) == [old]
    page = store.list(DEFAULT_AUTH_ID, {"first_party": C})
    assert list(page.objects) == [new]
    both = store.list(DEFAULT_AUTH_ID, {})
    assert list(both.objects) == [new, old]


def test_one_or_many_keeps_lone_values_bare():
    """The multimap stores one value bare, several in a list, and shrinks back."""
    multimap: _OneOrMany[str] = _OneOrMany()
    multimap.add("p", "n1")
    assert multimap._data["p"] == "n1"
    multimap.add("p", "n2")
    assert multimap.get("p") == ["n1", "n2"]
    assert multimap.contains("p", "n2")
    multimap.remove("p", "n1")
    assert multimap._data["p"] == "n2"
    multimap.remove("p", "n2")
    assert len(multimap) == 0
    assert not multimap.contains("p", "n2")


def test_every_transition_of_a_session_life():
    """Each row of the life table in records.py, the refused one included, in one walk."""
    config = EmulatorConfig()
    store = Store(ManualClock(), config.accounts, config.pool, seed=3, retention=7200.0)
    state = store.account(DEFAULT_AUTH_ID)
    # (none) -> active: indexed as active, parties busy
    natural = store.create(
        DEFAULT_AUTH_ID, {"first_party": A, "second_party": B, "session_expiry": 60}
    )
    deleted = store.create(DEFAULT_AUTH_ID, {"first_party": C, "second_party": D})
    assert natural.status == "active"
    assert state.busy.get(A) == [natural.virtual_number]
    # active -> active by update: modified now, expiry counted from now
    store.clock.advance(30)
    store.update(DEFAULT_AUTH_ID, natural.uuid, {"session_expiry": 60})
    assert (natural.modified, natural.expiry) == (natural.created + 30, natural.created + 90)
    # active -> expired by the clock: modified kept, party free
    store.clock.advance(60)
    assert store.get(DEFAULT_AUTH_ID, natural.uuid).status == "expired"
    assert natural.modified == natural.created + 30
    assert state.busy.get(A) == []
    # active -> expired by DELETE: ended, expiry and modified are now; duration kept
    store.expire(DEFAULT_AUTH_ID, deleted.uuid)
    now = store.clock.now()
    assert (deleted.ended, deleted.expiry, deleted.modified, deleted.duration) == (
        now,
        now,
        now,
        3600,
    )
    # expired -> expired by DELETE: nothing changes
    store.clock.advance(5)
    store.expire(DEFAULT_AUTH_ID, deleted.uuid)
    assert deleted.modified == now
    # expired -> update: refused
    with pytest.raises(InvalidOperation, match="expired"):
        store.update(DEFAULT_AUTH_ID, deleted.uuid, {"record": True})
    # expired -> gone once the retention has passed
    store.clock.advance(7200)
    with pytest.raises(SessionNotFound):
        store.get(DEFAULT_AUTH_ID, natural.uuid)
    assert store.list(DEFAULT_AUTH_ID, {}).total_count == 0
