"""The records the store keeps: sessions, per-account indexes, and the errors state refuses with.

Built for a million sessions: slotted records, epoch-second floats, virtual number strings shared
with the pool, and multimaps that keep a lone value bare instead of in a list of one.

A session's life (the store applies it; ``tests/test_emulator_store.py`` walks every row):

=======  ==================  =======  ===================================================
from     event               to       effects
=======  ==================  =======  ===================================================
(none)   create              active   indexed as active; its parties busy on its number
active   update              active   ``modified`` = now; ``session_expiry`` from now
active   clock past expiry   expired  ``ended`` = ``expiry``; ``modified`` kept; cool-off
active   DELETE              expired  ``ended`` = ``expiry`` = ``modified`` = now; cool-off
expired  DELETE              expired  nothing (a retried DELETE is harmless)
expired  update              expired  refused: 400
expired  retention passes    (gone)   forgotten: not listed, retrieve is a 404
=======  ==================  =======  ===================================================
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from masking_async.emulator.config import Account
from masking_async.emulator.index import Buckets, Index, new_index
from masking_async.emulator.pool import Allocator, NumberPool

if TYPE_CHECKING:
    from masking_async.emulator.calls.session_calls import SessionCalls

__all__ = [
    "KEY_FIELDS",
    "AccountState",
    "InvalidOperation",
    "SessionNotFound",
    "SessionRecord",
    "StoreError",
    "instant",
]


def instant(epoch: float) -> float:
    """``epoch`` on the microsecond grid the API shows: the same float a filter time parses to.

    ``datetime(..., microsecond).timestamp()`` is the integer microseconds divided by 10**6, so a
    stored time built the same way compares equal to the filter that spells it out.
    """
    return round(epoch * 1_000_000) / 1_000_000


class StoreError(Exception):
    """A request the state refuses; ``status`` is the HTTP status to answer with."""

    status = 400


class SessionNotFound(StoreError):
    """No such session in this account (other accounts' sessions are invisible)."""

    status = 404


class InvalidOperation(StoreError):
    """The operation breaks a rule that depends on the session or the pool."""


class SessionRecord:
    """One session. Slots, epoch-second floats and shared number strings keep it small.

    Times are epoch seconds on the microsecond grid (:func:`instant`). ``expiry`` is ``created +
    session_expiry``; an update of ``session_expiry`` moves it to ``update time + session_expiry``
    and ``duration`` to ``expiry - created`` (whole seconds, truncated), as the recorded answers of
    the real API show; DELETE sets ``expiry`` to that moment and leaves ``duration`` alone.
    ``ended`` is when the session stopped being active (``None`` while active). ``options`` holds
    every other create argument sent (and generated PINs), or ``None`` when there were none.
    """

    __slots__ = (
        "calls",
        "cooloff",
        "created",
        "duration",
        "ended",
        "expiry",
        "first_party",
        "modified",
        "options",
        "second_party",
        "seq",
        "single_party",
        "subaccount",
        "uuid",
        "virtual_number",
    )

    def __init__(
        self,
        uuid: str,
        first_party: str,
        second_party: str | None,
        virtual_number: str,
        created: float,
        session_expiry: int,
        *,
        subaccount: str | None = None,
        single_party: bool = False,
        cooloff: int = 0,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.uuid = uuid
        self.first_party = first_party
        self.second_party = second_party
        self.virtual_number = virtual_number
        self.created = created
        self.modified = created
        self.expiry = instant(created + session_expiry)
        self.duration = session_expiry
        self.ended: float | None = None
        self.subaccount = subaccount
        self.single_party = single_party
        self.cooloff = cooloff
        self.options = options
        #: Position in the account's creation order, set when the store takes the session.
        self.seq = -1
        #: What calls left on the session (``session_calls.SessionCalls``); ``None`` before any.
        #: ``status`` stays ``active``/``expired`` (what indexes key on); the API shows
        #: ``in-progress`` from ``session_calls.session_status``.
        self.calls: SessionCalls | None = None

    @property
    def active(self) -> bool:
        return self.ended is None

    @property
    def status(self) -> str:
        return "active" if self.ended is None else "expired"

    def parties(self) -> Iterable[str]:
        yield self.first_party
        if self.second_party is not None:
            yield self.second_party

    def indexed_values(self) -> Iterable[tuple[str, str]]:
        """(field, value) for every field a list can filter on by equality."""
        yield "first_party", self.first_party
        if self.second_party is not None:
            yield "second_party", self.second_party
        yield "virtual_number", self.virtual_number
        if self.subaccount is not None:
            yield "subaccount", self.subaccount

    def __repr__(self) -> str:
        return f"<SessionRecord {self.uuid} {self.status} {self.virtual_number}>"


V = TypeVar("V")


class _OneOrMany(Generic[V]):
    """A multimap that stores a lone value bare: most parties have one session, and a bare
    value saves the list or set a million parties would otherwise each carry."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, V | list[V]] = {}

    def add(self, key: str, value: V) -> None:
        current = self._data.get(key)
        if current is None:
            self._data[key] = value
        elif type(current) is list:
            current.append(value)
        else:
            self._data[key] = [current, value]  # type: ignore[list-item]

    def remove(self, key: str, value: V) -> None:
        current = self._data.get(key)
        if type(current) is list:
            current.remove(value)
            if len(current) == 1:
                self._data[key] = current[0]
        elif current is not None and current == value:
            del self._data[key]

    def get(self, key: str) -> list[V]:
        """The values of ``key`` in the order they were added."""
        current = self._data.get(key)
        if current is None:
            return []
        return list(current) if type(current) is list else [current]  # type: ignore[list-item]

    def contains(self, key: str, value: V) -> bool:
        current = self._data.get(key)
        if type(current) is list:
            return value in current
        return current is not None and current == value

    def __len__(self) -> int:
        return len(self._data)


#: The fields a list filters on by equality, each with its own index.
KEY_FIELDS: Final = ("first_party", "second_party", "virtual_number", "subaccount")


class AccountState:
    """One account's sessions and indexes; nothing here is shared with another account.

    ``all``, ``active`` and ``expired`` hold the account's sessions sorted by ``seq``;
    ``keyed[status][field]`` the same per value of each of :data:`KEY_FIELDS` (see
    :mod:`masking_async.emulator.index`). ``evictable`` lists sessions in creation order for
    retention; ``busy`` and ``cooloff`` decide which numbers a party may get.
    """

    __slots__ = (
        "active",
        "all",
        "allocator",
        "auth_id",
        "auth_token",
        "busy",
        "cooloff",
        "cooloff_heap",
        "evictable",
        "expired",
        "expiry_heap",
        "keyed",
        "last_created",
        "next_seq",
        "sessions",
    )

    def __init__(self, account: Account, pool: NumberPool) -> None:
        self.auth_id = account.auth_id
        self.auth_token = account.auth_token
        self.sessions: dict[str, SessionRecord] = {}
        self.all = new_index()
        self.active = new_index()
        self.expired = new_index()
        self.keyed: dict[str, dict[str, Buckets]] = {
            status: {field: Buckets() for field in KEY_FIELDS} for status in ("active", "expired")
        }
        self.evictable: deque[SessionRecord] = deque()
        self.next_seq = 0
        self.last_created = float("-inf")
        #: Party -> the virtual numbers of its active sessions (a party is busy on a number).
        self.busy: _OneOrMany[str] = _OneOrMany()
        #: "party number" -> when the cool-off after a session on that number ends.
        self.cooloff: dict[str, float] = {}
        self.expiry_heap: list[tuple[float, str]] = []
        self.cooloff_heap: list[tuple[float, str]] = []
        self.allocator = Allocator(pool)

    def index_status(self, record: SessionRecord) -> Index:
        return self.active if record.ended is None else self.expired

    def add(self, record: SessionRecord) -> None:
        """Take a new session: it is the newest of the account (its created time is clamped
        to never precede the last one, so created-time windows stay ranges of ``seq``)."""
        record.seq = self.next_seq
        self.next_seq += 1
        record.created = max(record.created, self.last_created)
        self.last_created = record.created
        self.sessions[record.uuid] = record
        self.all.add(record)
        self.index_status(record).add(record)
        for field, value in record.indexed_values():
            self.keyed[record.status][field].add(value, record)
        self.evictable.append(record)

    def unkey(self, record: SessionRecord) -> None:
        for field, value in record.indexed_values():
            self.keyed[record.status][field].remove(value, record)

    def rekey(self, record: SessionRecord) -> None:
        for field, value in record.indexed_values():
            self.keyed[record.status][field].add(value, record)

    def ended(self, record: SessionRecord, at: float) -> None:
        """Move a session that just ended from the active indexes to the expired ones."""
        self.unkey(record)
        self.active.discard(record)
        record.ended = at
        self.expired.add(record)
        self.rekey(record)

    def evict(self, record: SessionRecord) -> None:
        """Forget an ended session for good (retention)."""
        if self.sessions.get(record.uuid) is not record:
            return  # already evicted
        del self.sessions[record.uuid]
        self.all.discard(record)
        self.expired.discard(record)
        self.unkey(record)

    def is_taken(self, party: str, number: str, now: float) -> bool:
        """Whether ``party`` may not get ``number``: busy on it, or cooling off from it."""
        if self.busy.contains(party, number):
            return True
        return bool(self.cooloff) and self.cooloff.get(f"{party} {number}", 0.0) > now
