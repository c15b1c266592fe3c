"""What calls leave on a session: in-progress count, interactions, totals, callback sequence.

A session gets a :class:`SessionCalls` on its first call (``SessionRecord.calls``); until then it
renders as the API shows a session without calls (zeros, ``interaction: null``,
``last_interaction_time: ""``). Amounts are rendered as decimal strings once there are calls,
as the reference types them (``amount`` and the totals are "string").
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from masking_async.rules import format_timestamp

__all__ = [
    "SessionCalls",
    "bare_number",
    "call_fields",
    "calls_of",
    "epoch_text",
    "session_status",
]


def epoch_text(epoch: float) -> str:
    """Epoch seconds as the API writes times: ``2024-02-01 06:28:15 +0000 UTC``."""
    return format_timestamp(datetime.fromtimestamp(epoch, timezone.utc))


def bare_number(number: str | None) -> str:
    """A number as callbacks and the session object write it: without ``+`` (``""`` for none)."""
    return number[1:] if number and number.startswith("+") else (number or "")


class SessionCalls:
    """The call side of one session; changed only by the call engine, in clock order."""

    __slots__ = ("amount", "billed", "count", "fee", "interactions", "last", "sequence", "up")

    def __init__(self, fee: Decimal = Decimal("0")) -> None:
        #: The tariff's fee for hosting the session (``amount``).
        self.fee = fee
        #: Calls up right now: the session is ``in-progress`` while this is above 0.
        self.up = 0
        #: Call legs (call uuids) created in the session.
        self.count = 0
        self.billed = 0
        self.amount = Decimal("0")
        #: When the latest interaction ended (epoch seconds).
        self.last: float | None = None
        #: One dict per call: ``first_party_resource_url``, ``second_party_resource_url``,
        #: ``recording_resource_url`` (``None`` until that leg or recording exists).
        self.interactions: list[dict[str, str | None]] = []
        #: The last ``SequenceNumber`` sent for this session (both callback families).
        self.sequence = 0


def session_status(record: Any) -> str:
    """The status the API shows: ``in-progress`` while a call is up on an unexpired session.

    ``SessionRecord.status`` stays ``active`` then (the store's indexes and the ``status``
    filter treat a session in a call as active, as the filter's values say).
    """
    status: str = record.status
    calls: SessionCalls | None = record.calls
    if status == "active" and calls is not None and calls.up:
        return "in-progress"
    return status


def calls_of(record: Any) -> SessionCalls:
    """The record's call state, created on first use."""
    calls: SessionCalls | None = record.calls
    if calls is None:
        calls = record.calls = SessionCalls()
    return calls


def _money(amount: Decimal) -> str:
    return f"{amount:.5f}"


def call_fields(calls: SessionCalls | None) -> dict[str, Any]:
    """The session object's call fields: ``amount`` to ``last_interaction_time``."""
    session_fee = calls.fee if calls is not None else Decimal("0")
    if calls is None or not calls.count:
        zero: Any = _money(session_fee) if session_fee else 0
        return {
            "amount": zero,
            "interaction": None,
            "total_call_amount": 0,
            "total_call_count": 0,
            "total_call_billed_duration": 0,
            "total_session_amount": zero,
            "last_interaction_time": "",
        }
    last = epoch_text(calls.last) if calls.last is not None else ""
    return {
        "amount": _money(session_fee),
        "interaction": [dict(item) for item in calls.interactions] or None,
        "total_call_amount": _money(calls.amount),
        "total_call_count": calls.count,
        "total_call_billed_duration": calls.billed,
        "total_session_amount": _money(calls.amount + session_fee),
        "last_interaction_time": last,
    }
