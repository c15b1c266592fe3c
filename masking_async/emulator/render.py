"""Session records as the API answers them today: the one place the wire's shape is written.

Party numbers and ``session.virtual_number`` go out without ``+`` while the create's top-level
``virtual_number`` keeps it; timestamps read ``2024-02-01 06:28:15 +0000 UTC`` (with microseconds
when the time has them, as recorded answers do); play URLs are always there (``""`` when unset);
a DELETE answers ``{"api_id", "message": "Session Deleted"}`` as recorded; the call fields
(amounts, ``interaction``, ``last_interaction_time``, ``in-progress``) come from
:mod:`.calls.session_calls`.
PIN sessions also carry the PIN fields, with the real API's ``"pin_ prompt_play"`` key and string
``pin_retry_wait`` (see ``create-session-reference.txt``), so clients meet those quirks here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from masking_async import spec
from masking_async.emulator.calls.session_calls import call_fields, epoch_text, session_status
from masking_async.emulator.listing import Page
from masking_async.emulator.records import SessionRecord

__all__ = [
    "collection_path",
    "create_body",
    "error_body",
    "expire_body",
    "legacy_create_body",
    "list_body",
    "option",
    "retrieve_body",
    "session_body",
    "update_body",
]

#: Arguments a session shows with their documented default when they were never sent.
_DEFAULTED: Final = (
    "initiate_call_to_first_party",
    "callback_method",
    "call_time_limit",
    "ring_timeout",
    "record",
    "record_file_format",
    "recording_callback_method",
    "generate_pin",
    "generate_pin_length",
    "pin_retry",
    "pin_retry_wait",
)
#: URLs present in every recorded session object, "" when unset (as the update page shows too).
_BLANK_WHEN_UNSET: Final = (
    "callback_url",
    "recording_callback_url",
    "first_party_play_url",
    "second_party_play_url",
)
#: What a session says about arguments that were never sent.
_DEFAULTS: Final[Mapping[str, Any]] = {
    **{name: spec.PARAMS[name].default for name in _DEFAULTED},
    **dict.fromkeys(_BLANK_WHEN_UNSET, ""),
}
_PIN_FIELDS: Final = (
    "first_party_pin",
    "second_party_pin",
    "is_pin_authentication_required",
    "generate_pin",
    "generate_pin_length",
)
#: PIN settings sent back only when set, under the real API's names.
_PIN_EXTRAS: Final = {
    "pin_prompt_play": "pin_ prompt_play",
    "pin_retry": "pin_retry",
    "pin_retry_wait": "pin_retry_wait",
    "incorrect_pin_play": "incorrect_pin_play",
    "unknown_caller_play": "unknown_caller_play",
    "force_pin_authentication": "force_pin_authentication",
}


def _bare(number: str | None) -> str | None:
    return number[1:] if number is not None and number.startswith("+") else number


def option(record: SessionRecord, name: str) -> Any:
    """A session setting as sent, or the default the API documents (``None`` if it has none)."""
    options = record.options
    if options is not None and name in options:
        return options[name]
    return _DEFAULTS.get(name)


def collection_path(auth_id: str) -> str:
    return spec.SESSION_COLLECTION.format(auth_id=auth_id)


def session_body(record: SessionRecord, *, auth_id: str | None = None) -> dict[str, Any]:
    """The session object; with ``auth_id``, its ``resource_uri`` too (list objects carry one)."""
    options = {**_DEFAULTS, **(record.options or {})}
    calls = call_fields(record.calls)
    body: dict[str, Any] = {
        "first_party": _bare(record.first_party),
        "second_party": _bare(record.second_party),
        "virtual_number": _bare(record.virtual_number),
        "status": session_status(record),
        "initiate_call_to_first_party": options["initiate_call_to_first_party"],
    }
    if options.get("is_pin_authentication_required"):
        body.update({name: options.get(name) for name in _PIN_FIELDS})
        for name, key in _PIN_EXTRAS.items():
            if name in options:
                body[key] = options[name]
        body["pin_retry_wait"] = str(options["pin_retry_wait"])
    body.update(
        {
            "session_uuid": record.uuid,
            "callback_url": options["callback_url"],
            "callback_method": options["callback_method"],
            "created_time": epoch_text(record.created),
            "modified_time": epoch_text(record.modified),
            "expiry_time": epoch_text(record.expiry),
            "duration": record.duration,
            "amount": calls.pop("amount"),
            "call_time_limit": options["call_time_limit"],
            "ring_timeout": options["ring_timeout"],
        }
    )
    body["first_party_play_url"] = options["first_party_play_url"]
    body["second_party_play_url"] = options["second_party_play_url"]
    body["record"] = options["record"]
    if record.subaccount is not None:
        body["subaccount"] = record.subaccount
    for name in ("record_file_format", "recording_callback_url", "recording_callback_method"):
        body[name] = options[name]
    body.update(calls)
    if auth_id is not None:
        body["resource_uri"] = spec.SESSION_PATH.format(auth_id=auth_id, session_uuid=record.uuid)
    return body


def _api_id() -> str:
    return str(uuid.uuid4())


_CREATED: Final = "Session created"


def create_body(record: SessionRecord) -> dict[str, Any]:
    return {**legacy_create_body(record), "session": session_body(record)}


def legacy_create_body(record: SessionRecord) -> dict[str, Any]:
    """The first version's answer (legacy overview, Go SDK): the current one without ``session``."""
    return {
        "api_id": _api_id(),
        "session_uuid": record.uuid,
        "virtual_number": record.virtual_number,
        "message": _CREATED,
    }


def retrieve_body(record: SessionRecord) -> dict[str, Any]:
    return {"api_id": _api_id(), "response": session_body(record)}


def update_body(record: SessionRecord) -> dict[str, Any]:
    return {"api_id": _api_id(), "message": "Session updated", "session": session_body(record)}


def expire_body() -> dict[str, Any]:
    """The recorded answer of a DELETE (the reference shows none): a message, no session."""
    return {"api_id": _api_id(), "message": "Session Deleted"}


def _page_url(auth_id: str, limit: int, offset: int, query: Mapping[str, str]) -> str:
    rest = {k: v for k, v in query.items() if k not in ("limit", "offset")}
    return f"{collection_path(auth_id)}?" + urlencode({"limit": limit, "offset": offset, **rest})


def list_body(auth_id: str, page: Page, query: Mapping[str, str]) -> dict[str, Any]:
    """The list envelope; ``next``/``previous`` are relative URLs that keep the filters."""
    limit, offset = page.limit, page.offset
    following = offset + limit < page.total_count
    meta = {
        "limit": limit,
        "next": _page_url(auth_id, limit, offset + limit, query) if following else None,
        "offset": offset,
        "previous": _page_url(auth_id, limit, max(offset - limit, 0), query) if offset else None,
        "total_count": page.total_count,
    }
    objects = [session_body(record, auth_id=auth_id) for record in page.objects]
    return {"api_id": _api_id(), "response": {"meta": meta, "objects": objects}}


def error_body(message: str) -> dict[str, Any]:
    return {"api_id": _api_id(), "error": message}
