"""The list indexes: any mix of operations and filters gives what a plain scan gives; expired
sessions move out of the active indexes; retention forgets old ones."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import islice
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masking_async.emulator import DEFAULT_AUTH_ID, EmulatorConfig, ManualClock, Store
from masking_async.emulator.index import BUCKET_LIMIT, Buckets, Run, Union
from masking_async.emulator.listing import DEFAULT_WINDOW
from masking_async.emulator.records import InvalidOperation, SessionRecord
from masking_async.phones import party_numbers

PARTIES = list(islice(party_numbers("US", start=2000), 6))
SUB = "SA" + "7" * 18
HOUR = 3600.0


def _store(retention: float | None = None) -> Store:
    config = EmulatorConfig()
    kwargs = {} if retention is None else {"retention": retention}
    return Store(ManualClock(), config.accounts, config.pool, seed=3, **kwargs)


def _naive(store: Store, filters: dict[str, Any]) -> tuple[list[str], int]:
    """The same query by brute force over every kept session."""
    state = store.account(DEFAULT_AUTH_ID)
    now = store.clock.now()
    status = filters.get("status", "all")
    rows = []
    for record in state.sessions.values():
        if not now - DEFAULT_WINDOW <= record.created:
            continue
        if status != "all" and record.status != status:
            continue
        if any(getattr(record, f) != v for f, v in filters.items() if f in FIELDS):
            continue
        if "duration__gte" in filters and record.duration < filters["duration__gte"]:
            continue
        rows.append(record)
    rows.sort(key=lambda r: r.seq, reverse=True)
    offset, limit = filters.get("offset", 0), filters.get("limit", 20)
    return [r.uuid for r in rows[offset : offset + limit]], len(rows)


FIELDS = ("first_party", "second_party", "virtual_number", "subaccount")
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            st.sampled_from(PARTIES),
            st.sampled_from(PARTIES),
            st.sampled_from([60, 600, 3600, 86400]),
            st.booleans(),
        ),
        st.tuples(st.just("expire"), st.integers(0, 200)),
        st.tuples(st.just("advance"), st.sampled_from([1.0, 59.5, 600.0, 2 * 86400.0])),
    ),
    max_size=60,
)
FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["active", "expired", "all"]),
        "first_party": st.sampled_from(PARTIES),
        "second_party": st.sampled_from(PARTIES),
        "subaccount": st.just(SUB),
        "duration__gte": st.sampled_from([60, 3600]),
        "offset": st.integers(0, 25),
        "limit": st.integers(1, 20),
    },
)


def _apply(store: Store, operations: list[tuple[Any, ...]]) -> None:
    made: list[str] = []
    for operation in operations:
        if operation[0] == "create" and operation[1] != operation[2]:
            _, first, second, expiry, sub = operation
            params = {"first_party": first, "second_party": second, "session_expiry": expiry}
            try:
                record = store.create(
                    DEFAULT_AUTH_ID, params | ({"subaccount": SUB} if sub else {})
                )
            except InvalidOperation:  # no number free for these parties: a legitimate refusal
                continue
            made.append(record.uuid)
        elif operation[0] == "expire" and made:
            store.expire(DEFAULT_AUTH_ID, made[operation[1] % len(made)])
        elif operation[0] == "advance":
            store.clock.advance(operation[1])


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(OPERATIONS, st.lists(FILTERS, min_size=1, max_size=4))
def test_every_page_equals_a_plain_scan(operations, queries):
    """For any history and any filters, the indexed page and total equal a brute-force scan."""
    store = _store()
    _apply(store, operations)
    for filters in queries:
        page = store.list(DEFAULT_AUTH_ID, filters)
        assert ([r.uuid for r in page.objects], page.total_count) == _naive(store, filters)


def test_expired_sessions_leave_the_active_party_index():
    """A party's expired sessions are in the expired index only; the active one stays small."""
    store = _store()
    first, second = PARTIES[:2]
    for _ in range(30):
        store.create(DEFAULT_AUTH_ID, {"first_party": first, "second_party": second})
        store.clock.advance(HOUR)
    state = store.account(DEFAULT_AUTH_ID)
    assert len(state.keyed["active"]["first_party"].get(first)) == 1
    assert len(state.keyed["expired"]["first_party"].get(first)) == 29
    assert len(state.active) == 1


def test_retention_forgets_ended_sessions_and_keeps_memory_flat():
    """With a 1 h retention, a long run keeps about an hour of sessions, not all of them."""
    store = _store(retention=HOUR)
    first, second = PARTIES[:2]
    made = []
    for _ in range(500):
        made.append(store.create(DEFAULT_AUTH_ID, {"first_party": first, "second_party": second}))
        store.expire(DEFAULT_AUTH_ID, made[-1].uuid)
        store.clock.advance(60)
    state = store.account(DEFAULT_AUTH_ID)
    assert len(state.sessions) <= 61
    assert len(state.all) == len(state.sessions) == len(state.expired) + len(state.active)
    assert len(state.evictable) <= 62
    assert made[-1].uuid in state.sessions
    assert made[0].uuid not in state.sessions


def test_an_active_session_past_retention_is_evicted_when_it_ends():
    """Retention never drops a live session; it goes once it has ended."""
    store = _store(retention=60.0)
    record = store.create(DEFAULT_AUTH_ID, {"first_party": PARTIES[0], "second_party": PARTIES[1]})
    store.clock.advance(120)
    assert store.get(DEFAULT_AUTH_ID, record.uuid).status == "active"
    store.expire(DEFAULT_AUTH_ID, record.uuid)
    assert record.uuid not in store.account(DEFAULT_AUTH_ID).sessions


def _records(seqs: list[int]) -> list[SessionRecord]:
    made = []
    for seq in seqs:
        record = SessionRecord(f"u{seq}", "+1", None, "+2", 0.0, 60)
        record.seq = seq
        made.append(record)
    return made


def test_buckets_grow_from_bare_to_list_to_sorted_list_and_back():
    """A value's bucket stays sorted by seq through every size, and shrinks when emptied."""
    buckets = Buckets()
    records = _records(list(range(BUCKET_LIMIT + 10))[::-1])
    for record in records:
        buckets.add("k", record)
    assert [r.seq for r in buckets.get("k")] == sorted(r.seq for r in records)
    for record in records:
        buckets.remove("k", record)
    assert buckets.get("k") == ()
    assert len(buckets) == 0


@settings(derandomize=True, database=None)
@given(
    st.sets(st.integers(0, 300), max_size=40),
    st.sets(st.integers(0, 300), max_size=40),
    st.integers(0, 90),
    st.integers(1, 20),
)
def test_a_union_of_two_runs_pages_like_their_merge(a, b, offset, limit):
    """status=all on a value: pages of the union equal pages of the sorted merge."""
    b = b - a
    union = Union(Run(_records(sorted(a)), 0, 301), Run(_records(sorted(b)), 0, 301))
    merged = sorted(a | b, reverse=True)
    assert [r.seq for r in union.newest(offset, limit)] == merged[offset : offset + limit]
    assert [r.seq for r in union.descending()] == merged


def test_time_never_runs_backwards_inside_an_account():
    """A clock that steps back cannot make a later session older (created is clamped)."""
    store = _store()
    first = store.create(DEFAULT_AUTH_ID, {"first_party": PARTIES[0], "second_party": PARTIES[1]})
    store.clock._now -= 10  # a wall clock stepped back by NTP
    second = store.create(DEFAULT_AUTH_ID, {"first_party": PARTIES[2], "second_party": PARTIES[3]})
    assert second.created == first.created
    moment = datetime.fromtimestamp(first.created, timezone.utc)
    page = store.list(DEFAULT_AUTH_ID, {"created_time__gte": moment})
    assert [r.uuid for r in page.objects] == [second.uuid, first.uuid]
