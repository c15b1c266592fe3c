"""The emulator's state as JSON, for fixtures, snapshots and ``--state FILE``.

Version 1 of the format (times are ISO 8601 in UTC with microseconds; no credentials)::

    {"version": 1, "now": "2024-02-01T06:00:00+00:00",
     "accounts": {"MAEMULATORDEFAULT001": {
         "sessions": [{"session_uuid": "...", "first_party": "+1...", "second_party": "+1...",
                       "virtual_number": "+1...", "created_time": "...", "modified_time": "...",
                       "expiry_time": "...", "ended_time": null, "duration": 3600,
                       "subaccount": null, "single_party": false, "cooloff": 0,
                       "options": {"record": true}, "calls": null}],
         "cooloffs": [{"party": "+1...", "virtual_number": "+1...", "until": "..."}]}}}

A session that has had calls (or carries a session fee) has ``calls``: ``{"session_fee": "0.05",
"call_count": 2, "billed_duration": 60, "call_amount": "0.012", "last_interaction_time": "...",
"interactions": [{"first_party_resource_url": "...", "second_party_resource_url": null,
"recording_resource_url": null}], "sequence": 9}`` (amounts as decimal text). Calls still under
way are not saved: they live on the call engine's timeline, which a load forgets (they end as
``reset``), so a loaded session is never ``in-progress``. Without ``calls`` it has none.

Only accounts the emulator is configured with can be loaded; loading replaces their state. A
:class:`~masking_async.emulator.clock.ManualClock` behind the snapshot's ``now`` is moved forward
to it (never back), so a saved run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final

from masking_async.emulator.calls.session_calls import SessionCalls
from masking_async.emulator.clock import ManualClock
from masking_async.emulator.records import SessionRecord, instant
from masking_async.emulator.store import Store
from masking_async.errors import SnapshotError

__all__ = ["FORMAT_VERSION", "SnapshotError", "dump_state", "load_state"]

FORMAT_VERSION: Final = 1
#: The links of one interaction (one call), each a resource URL or null.
_INTERACTION_KEYS: Final = (
    "first_party_resource_url",
    "second_party_resource_url",
    "recording_resource_url",
)


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="microseconds")


def _session(record: SessionRecord) -> dict[str, Any]:
    return {
        "session_uuid": record.uuid,
        "first_party": record.first_party,
        "second_party": record.second_party,
        "virtual_number": record.virtual_number,
        "created_time": _time(record.created),
        "modified_time": _time(record.modified),
        "expiry_time": _time(record.expiry),
        "ended_time": _time(record.ended),
        "duration": record.duration,
        "subaccount": record.subaccount,
        "single_party": record.single_party,
        "cooloff": record.cooloff,
        "options": record.options or {},
        "calls": _calls(record.calls),
    }


def _calls(calls: SessionCalls | None) -> dict[str, Any] | None:
    """What calls left on a session so far (the steps still to come are not saved)."""
    if calls is None:
        return None
    return {
        "session_fee": str(calls.fee),
        "call_count": calls.count,
        "billed_duration": calls.billed,
        "call_amount": str(calls.amount),
        "last_interaction_time": _time(calls.last),
        "interactions": [dict(item) for item in calls.interactions],
        "sequence": calls.sequence,
    }


def dump_state(store: Store) -> dict[str, Any]:
    """Every account's sessions and running cool-offs, brought up to date first."""
    accounts: dict[str, Any] = {}
    for auth_id in store.auth_ids():
        cooloffs = [
            {"party": key.split(" ")[0], "virtual_number": key.split(" ")[1], "until": _time(until)}
            for key, until in store.cooloffs(auth_id).items()
        ]
        accounts[auth_id] = {
            "sessions": [_session(record) for record in store.records(auth_id)],
            "cooloffs": cooloffs,
        }
    return {"version": FORMAT_VERSION, "now": _time(store.clock.now()), "accounts": accounts}


class _Reader:
    """Typed access to one JSON object, naming the place in every error."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise SnapshotError(f"{where}: must be a JSON object")
        self.data, self.where = data, where

    def get(self, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) and kind is not bool:
            value = None  # JSON true is not a number here
        if not isinstance(value, kind):
            raise SnapshotError(f"{self.where}.{key}: missing or of the wrong type")
        return value

    def time(self, key: str, *, optional: bool = False) -> float | None:
        text = self.get(key, str, optional=optional)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise SnapshotError(f"{self.where}.{key}: must be an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return instant(moment.timestamp())

    def count(self, key: str) -> int:
        value: int = self.get(key, int)
        if value < 0:
            raise SnapshotError(f"{self.where}.{key}: must be >= 0")
        return value

    def amount(self, key: str) -> Decimal:
        text = self.get(key, str)
        try:
            value = Decimal(text)
        except ArithmeticError:  # decimal.InvalidOperation
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            raise SnapshotError(f"{self.where}.{key}: must be a decimal amount >= 0, as text")
        return value


def _session_calls(data: Any, where: str) -> SessionCalls:
    read = _Reader(data, where)
    calls = SessionCalls(read.amount("session_fee"))
    calls.count = read.count("call_count")
    calls.billed = read.count("billed_duration")
    calls.amount = read.amount("call_amount")
    calls.last = read.time("last_interaction_time", optional=True)
    calls.sequence = read.count("sequence")
    for n, item in enumerate(read.get("interactions", list)):
        links = _Reader(item, f"{where}.interactions[{n}]")
        if set(links.data) != set(_INTERACTION_KEYS):
            raise SnapshotError(f"{links.where}: must have exactly {', '.join(_INTERACTION_KEYS)}")
        calls.interactions.append(
            {key: links.get(key, str, optional=True) for key in _INTERACTION_KEYS}
        )
    return calls


def _record(data: Any, where: str) -> SessionRecord:
    read = _Reader(data, where)
    created = read.time("created_time")
    assert created is not None
    record = SessionRecord(
        read.get("session_uuid", str),
        read.get("first_party", str),
        read.get("second_party", str, optional=True),
        read.get("virtual_number", str),
        created,
        read.get("duration", int),
        subaccount=read.get("subaccount", str, optional=True),
        single_party=bool(read.get("single_party", bool, optional=True)),
        cooloff=read.get("cooloff", int, optional=True) or 0,
        options=read.get("options", dict, optional=True) or None,
    )
    record.modified = read.time("modified_time", optional=True) or created
    record.expiry = read.time("expiry_time", optional=True) or record.expiry
    record.ended = read.time("ended_time", optional=True)
    if read.data.get("calls") is not None:
        record.calls = _session_calls(read.data["calls"], f"{where}.calls")
    return record


def load_state(store: Store, document: Any) -> None:
    """Replace the state of every account the document names (checked fully before any change)."""
    top = _Reader(document, "state")
    if top.get("version", int) != FORMAT_VERSION:
        raise SnapshotError(f"state.version: only version {FORMAT_VERSION} can be loaded")
    accounts = _Reader(top.get("accounts", dict), "state.accounts")
    loaded: list[tuple[str, list[SessionRecord], dict[str, float]]] = []
    for auth_id, account in accounts.data.items():
        where = f"state.accounts.{auth_id}"
        if store.account(auth_id) is None:
            raise SnapshotError(f"{where}: not an account of this emulator")
        read = _Reader(account, where)
        sessions = read.get("sessions", list, optional=True) or []
        records = [_record(item, f"{where}.sessions[{n}]") for n, item in enumerate(sessions)]
        if len({record.uuid for record in records}) != len(records):
            raise SnapshotError(f"{where}.sessions: a session_uuid appears twice")
        cooloffs: dict[str, float] = {}
        for n, item in enumerate(read.get("cooloffs", list, optional=True) or []):
            entry = _Reader(item, f"{where}.cooloffs[{n}]")
            until = entry.time("until")
            assert until is not None
            key = f"{entry.get('party', str)} {entry.get('virtual_number', str)}"
            cooloffs[key] = until
        loaded.append((auth_id, records, cooloffs))
    for auth_id, records, cooloffs in loaded:
        store.restore(auth_id, records, cooloffs)
    now = top.time("now", optional=True)
    clock = store.clock
    if now is not None and isinstance(clock, ManualClock) and now > clock.now():
        clock.advance(now - clock.now())  # a manual clock resumes where the snapshot was taken
