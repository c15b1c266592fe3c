"""The records the store keeps: sessions, per-account indexes, and the errors state refuses with.

Built for a million sessions: slotted records, epoch-second floats, virtual number strings shared
with the pool, and multimaps that keep a lone value bare instead of in a list of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from masking_async.emulator.config import Account
from masking_async.emulator.pool import Allocator, NumberPool

if TYPE_CHECKING:
    from masking_async.emulator.callstate import SessionCalls

__all__ = [
    "AccountState",
    "InvalidOperation",
    "SessionNotFound",
    "SessionRecord",
    "StoreError",
]


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

    ``expiry`` is ``created + session_expiry`` until the session is expired by DELETE, which sets
    it to that moment; ``duration`` is always ``expiry - created``. ``ended`` is when the session
    stopped being active (``None`` while active). ``options`` holds every other create argument
    that was sent (and generated PINs), or ``None`` when there were none.
    """

    __slots__ = (
        "calls",
        "cooloff",
        "created",
        "ended",
        "expiry",
        "first_party",
        "modified",
        "options",
        "second_party",
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
        self.expiry = created + session_expiry
        self.ended: float | None = None
        self.subaccount = subaccount
        self.single_party = single_party
        self.cooloff = cooloff
        self.options = options
        #: What calls left on the session (``callstate.SessionCalls``); ``None`` before any.
        #: ``status`` stays ``active``/``expired`` (what indexes key on); the API shows
        #: ``in-progress`` from ``callstate.session_status``.
        self.calls: SessionCalls | None = None

    @property
    def active(self) -> bool:
        return self.ended is None

    @property
    def status(self) -> str:
        return "active" if self.ended is None else "expired"

    @property
    def duration(self) -> int:
        return round(self.expiry - self.created)

    def parties(self) -> Iterable[str]:
        yield self.first_party
        if self.second_party is not None:
            yield self.second_party

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


class AccountState:
    """One account's sessions and indexes; nothing here is shared with another account."""

    __slots__ = (
        "allocator",
        "auth_id",
        "auth_token",
        "busy",
        "by_party",
        "cooloff",
        "cooloff_heap",
        "expiry_heap",
        "ordered",
        "sessions",
    )

    def __init__(self, account: Account, pool: NumberPool) -> None:
        self.auth_id = account.auth_id
        self.auth_token = account.auth_token
        self.sessions: dict[str, SessionRecord] = {}
        #: Every session in creation order: a page of an unfiltered list is a slice.
        self.ordered: list[SessionRecord] = []
        #: Party -> its sessions (either role), in creation order, for party-filtered lists.
        self.by_party: _OneOrMany[SessionRecord] = _OneOrMany()
        #: Party -> the virtual numbers of its active sessions (a party is busy on a number).
        self.busy: _OneOrMany[str] = _OneOrMany()
        #: "party number" -> when the cool-off after a session on that number ends.
        self.cooloff: dict[str, float] = {}
        self.expiry_heap: list[tuple[float, str]] = []
        self.cooloff_heap: list[tuple[float, str]] = []
        self.allocator = Allocator(pool)

    def is_taken(self, party: str, number: str, now: float) -> bool:
        """Whether ``party`` may not get ``number``: busy on it, or cooling off from it."""
        if self.busy.contains(party, number):
            return True
        return bool(self.cooloff) and self.cooloff.get(f"{party} {number}", 0.0) > now
