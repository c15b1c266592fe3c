"""The emulator's state, in plain Python: accounts, sessions and the indexes that keep them fast.

Nothing here knows HTTP, so it can be driven directly (tests, the benchmark's million sessions).
Arguments arrive already checked by :mod:`masking_async.rules`; the store enforces the rules that
depend on state (the session exists, is active, was created single-party; the pool has a number).

Costs stay flat as sessions pile up: a create touches only its two parties' busy numbers; expiry
is a heap popped lazily at the next operation on the account; a retrieve is one dict lookup.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

from masking_async import spec
from masking_async.emulator.clock import Clock
from masking_async.emulator.config import Account, PoolConfig
from masking_async.emulator.listing import MAX_WINDOW, Page, query
from masking_async.emulator.pool import NumberPool, PoolExhausted
from masking_async.emulator.records import (
    AccountState,
    InvalidOperation,
    SessionNotFound,
    SessionRecord,
    instant,
)

__all__ = ["Store", "StoreObserver"]

#: Create arguments kept in their own slots (or used once); the rest go to ``options``.
_OWN_SLOTS: Final = frozenset(
    {
        "first_party",
        "second_party",
        "subaccount",
        "session_expiry",
        "create_session_with_single_party",
        "virtual_number_cooloff_period",
        "geomatch",
    }
)
DEFAULT_SESSION_EXPIRY: Final = spec.PARAMS["session_expiry"].default
DEFAULT_PIN_LENGTH: Final = spec.PARAMS["generate_pin_length"].default


class StoreObserver(Protocol):
    """Told what happens to sessions (the call engine is one): before an account is read, after
    a session is created, and when one ends (by time or DELETE)."""

    def sync(self, state: AccountState, now: float) -> None: ...

    def created(self, state: AccountState, record: SessionRecord) -> None: ...

    def ended(self, state: AccountState, record: SessionRecord, at: float) -> None: ...

    def forget(self, auth_id: str | None) -> None:
        """The account's sessions (all accounts' with ``None``) are being forgotten."""
        ...


class Store:
    """All accounts' state, read and changed through the five operations of the API."""

    #: Set by the call engine; ``None`` in a store used on its own.
    observer: StoreObserver | None = None

    def __init__(
        self,
        clock: Clock,
        accounts: Iterable[Account],
        pool: PoolConfig,
        *,
        seed: int | None = None,
        retention: float = MAX_WINDOW,
    ) -> None:
        self.clock = clock
        self.retention = retention
        self.pool = NumberPool(pool)
        self._configured = {a.auth_id: a for a in accounts}
        self._accounts = {a.auth_id: AccountState(a, self.pool) for a in accounts}
        self._random = random.Random(seed)

    # -- accounts ----------------------------------------------------------------------------

    def account(self, auth_id: str) -> AccountState | None:
        return self._accounts.get(auth_id)

    def auth_ids(self) -> list[str]:
        return list(self._accounts)

    def reset(self, auth_id: str | None = None) -> None:
        """Forget every session (and cool-off) of one account, or of all accounts."""
        if auth_id is not None and auth_id not in self._configured:
            raise SessionNotFound(f"account {auth_id} not found")
        if self.observer is not None:
            self.observer.forget(auth_id)
        for account in self._configured.values():
            if auth_id is None or account.auth_id == auth_id:
                self._accounts[account.auth_id] = AccountState(account, self.pool)

    def records(self, auth_id: str) -> list[SessionRecord]:
        """Every session of an account, oldest first, brought up to date (for snapshots)."""
        state, _ = self._state(auth_id)
        return list(state.all)

    def cooloffs(self, auth_id: str) -> dict[str, float]:
        """Cool-offs still running: ``"party number"`` -> when each ends."""
        state, _ = self._state(auth_id)
        return dict(state.cooloff)

    def restore(
        self, auth_id: str, records: Iterable[SessionRecord], cooloffs: Mapping[str, float]
    ) -> None:
        """Replace an account's state with these sessions and cool-offs (a loaded snapshot)."""
        self.reset(auth_id)
        state = self._accounts[auth_id]
        for record in sorted(records, key=lambda record: record.created):
            if record.uuid in state.sessions:
                raise InvalidOperation(f"session {record.uuid} appears twice")
            self._insert(state, record)
        for key, until in cooloffs.items():
            state.cooloff[key] = until
            heapq.heappush(state.cooloff_heap, (until, key))

    def _state(self, auth_id: str) -> tuple[AccountState, float]:
        """The account, brought up to date: sessions past their expiry are expired first."""
        state = self._accounts.get(auth_id)
        if state is None:
            raise SessionNotFound(f"account {auth_id} not found")
        now = instant(self.clock.now())
        if self.observer is not None:
            self.observer.sync(state, now)
        self._sweep(state, now)
        return state, now

    def state(self, auth_id: str) -> AccountState:
        """An account's state, brought up to date (calls, then expiries); 404 if unknown."""
        return self._state(auth_id)[0]

    def sweep(self, state: AccountState, now: float) -> None:
        """End the sessions due by ``now``: the call engine keeps expiry and calls in order."""
        self._sweep(state, now)

    def _sweep(self, state: AccountState, now: float) -> None:
        """Expire what is due, end finished cool-offs, evict what is past retention."""
        heap = state.expiry_heap
        while heap and heap[0][0] <= now:
            _, session_uuid = heapq.heappop(heap)
            record = state.sessions.get(session_uuid)
            if record is not None and record.ended is None and record.expiry <= now:
                self._end(state, record, record.expiry, now)
        cooling = state.cooloff_heap
        while cooling and cooling[0][0] <= now:
            _, key = heapq.heappop(cooling)
            if state.cooloff.get(key, now + 1) <= now:
                del state.cooloff[key]
        horizon = now - self.retention
        queue = state.evictable
        while queue and queue[0].created < horizon:
            record = queue.popleft()
            if record.ended is not None:
                state.evict(record)
            # an active one is evicted when it ends (see _end)

    def _end(self, state: AccountState, record: SessionRecord, at: float, now: float) -> None:
        """End a session at ``at``; ``modified`` stays the time of the last request that changed
        it (natural expiry is no modification, as the reference's expired examples show)."""
        state.ended(record, at)
        if self.observer is not None:
            self.observer.ended(state, record, at)
        if record.created < now - self.retention:
            state.evict(record)
        for party in record.parties():
            state.busy.remove(party, record.virtual_number)
            if record.cooloff:
                key = f"{party} {record.virtual_number}"
                until = at + record.cooloff
                state.cooloff[key] = max(until, state.cooloff.get(key, until))
                heapq.heappush(state.cooloff_heap, (until, key))

    # -- operations --------------------------------------------------------------------------

    def create(self, auth_id: str, params: Mapping[str, Any]) -> SessionRecord:
        """Create a session from checked create arguments (see ``rules.check_create``)."""
        state, now = self._state(auth_id)
        first: str = params["first_party"]
        second: str | None = params.get("second_party")
        subaccount: str | None = params.get("subaccount")
        region = self.pool.region_of(first) if params.get("geomatch", True) else None

        def taken(number: str) -> bool:
            return state.is_taken(first, number, now) or (
                second is not None and state.is_taken(second, number, now)
            )

        try:
            number = state.allocator.pick(subaccount, region, taken)
        except PoolExhausted as exc:
            raise InvalidOperation(str(exc)) from None
        options = {k: v for k, v in params.items() if k not in _OWN_SLOTS} or None
        if params.get("generate_pin"):
            options = {**(options or {}), **self._pins(params)}
        record = SessionRecord(
            self._new_uuid(),
            first,
            second,
            number,
            now,
            params.get("session_expiry", DEFAULT_SESSION_EXPIRY),
            subaccount=subaccount,
            single_party=params.get("create_session_with_single_party", False),
            cooloff=params.get("virtual_number_cooloff_period", 0),
            options=options,
        )
        self._insert(state, record)
        if self.observer is not None:
            self.observer.created(state, record)
        return record

    def get(self, auth_id: str, session_uuid: str) -> SessionRecord:
        state, _ = self._state(auth_id)
        return self._find(state, session_uuid)

    def update(self, auth_id: str, session_uuid: str, params: Mapping[str, Any]) -> SessionRecord:
        """Apply checked update arguments (see ``rules.check_update``) to an active session."""
        state, now = self._state(auth_id)
        record = self._find(state, session_uuid)
        if record.ended is not None:
            raise InvalidOperation(f"session {session_uuid} is expired and cannot be updated")
        changes = dict(params)
        changes.pop("session_uuid", None)
        parties: dict[str, str] = {
            name: changes.pop(name) for name in ("first_party", "second_party") if name in changes
        }
        if parties:
            self._move_parties(state, record, parties, now)
        if "session_expiry" in changes:
            # Counted from now, as the recorded answers show (expiry = modified + session_expiry).
            record.expiry = instant(now + changes.pop("session_expiry"))
            record.duration = int(record.expiry - record.created)
            heapq.heappush(state.expiry_heap, (record.expiry, record.uuid))
        if changes:
            record.options = {**(record.options or {}), **changes}
        record.modified = now
        return record

    def expire(self, auth_id: str, session_uuid: str) -> SessionRecord:
        """Expire a session now; expiring an expired session changes nothing."""
        state, now = self._state(auth_id)
        record = self._find(state, session_uuid)
        if record.ended is None:
            record.expiry = record.modified = now
            self._end(state, record, now, now)
        return record

    def list(self, auth_id: str, filters: Mapping[str, Any]) -> Page:
        """A page of sessions, newest first, for checked filters (``rules.check_list_filters``)."""
        state, now = self._state(auth_id)
        return query(state, filters, now)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _insert(state: AccountState, record: SessionRecord) -> None:
        """Add a new session to every index (it is the newest one of its account)."""
        state.add(record)
        if record.ended is None:
            for party in record.parties():
                state.busy.add(party, record.virtual_number)
            heapq.heappush(state.expiry_heap, (record.expiry, record.uuid))

    @staticmethod
    def _find(state: AccountState, session_uuid: str) -> SessionRecord:
        record = state.sessions.get(session_uuid)
        if record is None:
            raise SessionNotFound(f"session {session_uuid} not found")
        return record

    def _move_parties(
        self, state: AccountState, record: SessionRecord, parties: dict[str, str], now: float
    ) -> None:
        """Change a single-party session's parties, keeping every index and rule intact."""
        if not record.single_party:
            names = " and ".join(parties)
            raise InvalidOperation(
                f"{names}: can be updated only on a session created with"
                " create_session_with_single_party=true"
            )
        first = parties.get("first_party", record.first_party)
        second = parties.get("second_party", record.second_party)
        if first == second:
            raise InvalidOperation("second_party: must differ from first_party")
        old = set(record.parties())
        for name, party in (("first_party", first), ("second_party", second)):
            if (
                party is not None
                and party not in old
                and state.is_taken(party, record.virtual_number, now)
            ):
                raise InvalidOperation(
                    f"{name}: {party} is already in an active session (or cool-off) on virtual"
                    f" number {record.virtual_number}"
                )
        state.unkey(record)
        record.first_party, record.second_party = first, second
        state.rekey(record)
        new = set(record.parties())
        for party in old - new:
            state.busy.remove(party, record.virtual_number)
        for party in new - old:
            state.busy.add(party, record.virtual_number)

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def _pins(self, params: Mapping[str, Any]) -> dict[str, str]:
        length = params.get("generate_pin_length", DEFAULT_PIN_LENGTH)
        first = "".join(self._random.choices("0123456789", k=length))
        second = first
        while second == first:
            second = "".join(self._random.choices("0123456789", k=length))
        return {"first_party_pin": first, "second_party_pin": second}
