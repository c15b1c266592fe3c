"""The two callback families as typed events, read from whatever shape the payload came in.

Callbacks arrive as a query string (GET), a form body or a JSON object (POST), and every value
may be a string (``"12"``, ``""``, ``"null"``). The wire converter of :mod:`masking_async.wire`
already reads such values (string numbers, empty as ``None``, the API's timestamps); here it is
taught the callbacks' ``PascalCase`` keys. Unknown keys are kept in ``extra``, so a new attribute
the server adds is never lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import attrs
import cattrs

from masking_async.errors import CallbackFormatError
from masking_async.models import Interaction
from masking_async.wire import make_converter

__all__ = [
    "RECORDING_ATTRIBUTES",
    "RECORDING_EVENTS",
    "STATUS_ATTRIBUTES",
    "STATUS_EVENTS",
    "CallbackEvent",
    "CallbackFormatError",
    "RecordingEvent",
    "SessionEvent",
    "parse_event",
]

#: The session status callback's events, as ``session-api-reference.md`` lists them.
STATUS_EVENTS: Final = (
    "SessionFirstPartyAnswer",
    "SessionSecondPartyRing",
    "SessionSecondPartyAnswer",
    "SessionSecondPartyHangup",
    "SessionFirstPartyHangup",
    "SessionPinAuthenticationStatus",
    "SessionTimeout",
    "SessionPartiesHangup",
)
#: Every attribute a status callback carries, in the order the reference lists them.
STATUS_ATTRIBUTES: Final = (
    "EventName",
    "EventTimestamp",
    "SessionUUID",
    "From",
    "To",
    "VirtualNumber",
    "PinAuthenticationStatus",
    "PinRetryCounter",
    "Amount",
    "BilledDuration",
    "Duration",
    "PlivoHangupCause",
    "PlivoHangupCauseCode",
    "SequenceNumber",
)
#: Every attribute a recording callback carries, in the order the reference lists them.
RECORDING_ATTRIBUTES: Final = (
    "EventName",
    "EventTimestamp",
    "SessionUUID",
    "From",
    "To",
    "VirtualNumber",
    "RecordingUUID",
    "RecordingURL",
    "RecordingResourceURL",
    "RecordingDuration",
    "RecordingStartTime",
    "RecordingEndTime",
    "RecordingFormat",
    "SequenceNumber",
    "interaction",
)
#: The recording callback's events.
RECORDING_EVENTS: Final = (
    "SessionRecordingInitiated",
    "SessionRecordingCompleted",
    "SessionRecordingFailed",
)


def _party(value: str | None) -> str | None:
    """Numbers arrive without ``+``; give them the E.164 form the rest of the library uses."""
    return "+" + value if value is not None and value.isdigit() else value


@attrs.frozen(kw_only=True)
class _Event:
    """What both families carry; ``extra`` keeps attributes this library does not know."""

    event_name: str
    session_uuid: str
    sequence_number: int
    event_timestamp: datetime | None = None
    from_number: str | None = attrs.field(default=None, converter=_party)
    to_number: str | None = attrs.field(default=None, converter=_party)
    virtual_number: str | None = attrs.field(default=None, converter=_party)
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class SessionEvent(_Event):
    """A session status callback (``callback_url``); attributes not sent are ``None``."""

    pin_authentication_status: str | None = None
    pin_retry_counter: int | None = None
    amount: Decimal | None = None
    billed_duration: int | None = None
    duration: int | None = None
    hangup_cause: str | None = None
    hangup_cause_code: int | None = None


@attrs.frozen(kw_only=True)
class RecordingEvent(_Event):
    """A recording callback (``recording_callback_url``); attributes not sent are ``None``."""

    recording_uuid: str | None = None
    recording_url: str | None = None
    recording_resource_url: str | None = None
    recording_duration: int | None = None
    recording_start_time: datetime | None = None
    recording_end_time: datetime | None = None
    recording_format: str | None = None
    interaction: Interaction | None = None


CallbackEvent = SessionEvent | RecordingEvent

#: Wire key -> attribute, for both families (attributes absent from a family are skipped).
_KEYS: Final = {
    "EventName": "event_name",
    "EventTimestamp": "event_timestamp",
    "SessionUUID": "session_uuid",
    "From": "from_number",
    "To": "to_number",
    "VirtualNumber": "virtual_number",
    "PinAuthenticationStatus": "pin_authentication_status",
    "PinRetryCounter": "pin_retry_counter",
    "Amount": "amount",
    "BilledDuration": "billed_duration",
    "Duration": "duration",
    "PlivoHangupCause": "hangup_cause",
    "PlivoHangupCauseCode": "hangup_cause_code",
    "SequenceNumber": "sequence_number",
    "RecordingUUID": "recording_uuid",
    "RecordingURL": "recording_url",
    "RecordingResourceURL": "recording_resource_url",
    "RecordingDuration": "recording_duration",
    "RecordingStartTime": "recording_start_time",
    "RecordingEndTime": "recording_end_time",
    "RecordingFormat": "recording_format",
    "interaction": "interaction",
}


def _interaction(value: Any, _: Any) -> Interaction | None:
    if isinstance(value, str):
        if not value.strip() or value.strip().lower() == "null":
            return None
        value = json.loads(value)
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"not an interaction: {value!r}")
    names = {a.name for a in attrs.fields(Interaction)}
    return Interaction(**{k: v or None for k, v in value.items() if k in names})


def _make_converter() -> cattrs.Converter:
    converter = make_converter()
    converter.register_structure_hook(Interaction | None, _interaction)
    return converter


_CONVERTER: Final = _make_converter()


def _single(value: Any) -> Any:
    """Form and query parsers give lists for repeated keys; callbacks send each key once."""
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    return value


def parse_event(params: Mapping[str, Any]) -> CallbackEvent:
    """The event in a callback's parameters (query, form or JSON object, values of any type)."""
    values = {str(key): _single(value) for key, value in params.items()}
    name = values.get("EventName")
    kind: type[SessionEvent] | type[RecordingEvent]
    if name in RECORDING_EVENTS:
        kind = RecordingEvent
    elif isinstance(name, str) and name:
        kind = SessionEvent
    else:
        raise CallbackFormatError("not a session callback: no EventName")
    fields = {a.name for a in attrs.fields(kind)}
    data: dict[str, Any] = {"extra": {}}
    for key, value in values.items():
        attribute = _KEYS.get(key)
        if attribute is not None and attribute in fields:
            data[attribute] = value
        else:
            data["extra"][key] = value
    try:
        event: CallbackEvent = _CONVERTER.structure(data, kind)
    except (ValueError, TypeError, KeyError, cattrs.BaseValidationError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise CallbackFormatError(f"unreadable {name} callback: {detail}") from None
    return event
