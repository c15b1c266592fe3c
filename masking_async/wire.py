"""Reading the API's answers into :mod:`masking_async.models`: every quirk of the wire lives here.

The API has answered in two shapes over time. The current one sends JSON types, party numbers
without ``+`` and timestamps like ``2024-02-01 06:28:15 +0000 UTC``; the older one sends every
value as a string (``"false"``, ``"null"``, ``"3600"``, ``"{}"``) and ``session_expiry`` instead of
``duration``. One key is spelled ``"pin_ prompt_play"``. Recorded answers of the real API (the
official SDK's test fixtures, copied in ``tests/fixtures/``) add microseconds, a zone once written
``+0000 +0000``, play URLs sent as ``""`` and a DELETE answer without a session. The hooks below
accept all of it and keep unknown fields in ``Session.extra``.

A session the client cannot fully read is still a success (the server answered 2xx: the change
happened): its unreadable fields are left unset, kept as sent in ``extra`` and named in
``Session.unreadable``. Only an answer with no session at all, or none with a ``session_uuid``,
is a :class:`~masking_async.errors.ResponseFormatError`.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import cattrs
from cattrs.gen import make_dict_structure_fn

from masking_async import spec
from masking_async.errors import ResponseFormatError
from masking_async.models import Interaction, PageMeta, Session, SessionPage

__all__ = ["make_converter", "read_page", "read_session"]

_NULLS: Final = frozenset({"", "null", "none", "{}", "[]"})
_KEY_FIXES: Final = {"pin_ prompt_play": "pin_prompt_play"}
_PARTY_FIELDS: Final = ("first_party", "second_party", "virtual_number")
_SESSION_TYPES: Final = typing.get_type_hints(Session)
_FRACTION = re.compile(r"(\.\d{6})\d+")
#: The API's own format, in UTC: read without strptime, which costs ~10 µs a try.
_UTC_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6})\d*)?"
    r"(?: ?(?:\+0000|\+00:00|Z))*(?: UTC)?"  # the zone once came twice: "+0000 +0000"
)
_API_ZONE: Final = " +0000 UTC"
#: Length of ``2024-02-01 06:28:15.123456 +0000 UTC`` (and without the fraction): its date part.
_API_TIME_ENDS: Final = {36: 26, 29: 19}
_TIME_FORMATS: Final = (
    "%Y-%m-%d %H:%M:%S.%f %z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
)


def _null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _NULLS)


# Each hook first answers the type the current API sends (``value.__class__ is ...``: a session
# has some thirty fields and a page twenty sessions), then any other form the older shapes use.


def _bool(value: Any, _: Any) -> bool | None:
    if value.__class__ is bool:
        return value
    if _null(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


def _int(value: Any, _: Any) -> int | None:
    if value.__class__ is int:
        return value
    if _null(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(value)  # ints, and numbers sent as strings


def _decimal(value: Any, _: Any) -> Decimal | None:
    if value.__class__ is int:
        return Decimal(value)  # the same as Decimal(str(value))
    if _null(value):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def _str(value: Any, _: Any) -> str | None:
    if value.__class__ is str:
        return None if value.strip().lower() in _NULLS else value
    if _null(value):
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"not a string: {value!r}")


def _text(value: Any, _: Any) -> str:
    """A required string (``session_uuid``, ``status``): never a null, a list or an object."""
    text = _str(value, None)
    if text is None:
        raise ValueError(f"missing: {value!r}")
    return text


def parse_time(value: Any, _: Any = None) -> datetime | None:
    """``2024-02-01 06:28:15 +0000 UTC``, with or without fraction or zone; naive means UTC."""
    if _null(value):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    # The API's exact form, with or without microseconds: the C parser, then the general way.
    end = _API_TIME_ENDS.get(len(value))
    if end is not None and value.endswith(_API_ZONE):
        try:
            return datetime.fromisoformat(value[:end] + "+00:00")  # tzinfo: timezone.utc
        except ValueError:
            pass  # not a date after all: the general way says why
    if fast := _UTC_TIME.fullmatch(value.strip()):
        year, month, day, hour, minute, second, fraction = fast.groups()
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=timezone.utc,
        )
    text = _FRACTION.sub(r"\1", value.strip().removesuffix(" UTC"))
    for fmt in _TIME_FORMATS:
        try:
            moment = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    else:
        moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _party(value: Any) -> Any:
    """Numbers come back without ``+``; give them the E.164 form the rest of the code uses."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.isdigit():
        return "+" + value
    return value


def _interactions(value: Any) -> list[Any]:
    if _null(value):
        return []
    if isinstance(value, Mapping):
        return [value] if value else []
    if isinstance(value, list):
        return value
    raise ValueError(f"not an interaction: {value!r}")


def _sorted_keys(data: Mapping[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields and the other keys of a session, each key as text with its spelling fixed."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _KEY_FIXES.get(str(raw_key), str(raw_key))
        (known if key in spec.SESSION_FIELDS else extra)[key] = value
    return known, extra


def _prepare_session(data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"a session must be an object, not {type(data).__name__}")
    known: dict[str, Any] = dict(data)
    extra: dict[str, Any] = {}
    # Most keys are fields: move the few others out (a set difference, not a loop over all).
    others = known.keys() - spec.SESSION_FIELDS
    if others:
        if any(_KEY_FIXES.get(str(key), str(key)) in spec.SESSION_FIELDS for key in others):
            known, extra = _sorted_keys(data)  # a misspelt field: in the order it came
        else:
            extra = {str(key): known.pop(key) for key in data if key in others}
    if "duration" not in known and "session_expiry" in extra:
        known["duration"] = extra["session_expiry"]
    for name in _PARTY_FIELDS:
        if name in known:
            known[name] = _party(known[name])
    try:  # noqa: SIM105 (suppress makes an object: this runs for every session read)
        known["interaction"] = _interactions(known.get("interaction"))
    except ValueError:
        pass  # left as sent: unreadable (see _lenient)
    if "session_uuid" not in known:
        raise ValueError("a session has no session_uuid")
    known["extra"] = extra
    return known


def make_converter() -> cattrs.Converter:
    """A converter for the API's answers; one per client, never a global one."""
    converter = cattrs.Converter()
    for kind, hook in (
        (bool | None, _bool),
        (int | None, _int),
        (int, _int),
        (str | None, _str),
        (str, _text),
        (Decimal | None, _decimal),
        (datetime | None, parse_time),
    ):
        converter.register_structure_hook(kind, hook)
    # Without detailed validation: a session that fails is read again field by field
    # (``_lenient``), which names what failed, so the fast path needs no bookkeeping.
    session_fn = make_dict_structure_fn(Session, converter, _cattrs_detailed_validation=False)
    converter.register_structure_hook(
        Session, lambda value, kind: session_fn(_prepare_session(value), kind)
    )
    converter.register_structure_hook(
        Interaction, make_dict_structure_fn(Interaction, converter, _cattrs_forbid_extra_keys=False)
    )
    return converter


def _structure(converter: cattrs.Converter, data: Any, kind: type[Any], where: str) -> Any:
    try:
        return converter.structure(data, kind)
    except _STRUCTURE_ERRORS as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise ResponseFormatError(f"unreadable {where}: {detail}") from None


_STRUCTURE_ERRORS: Final = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    cattrs.BaseValidationError,
)


def _lenient(converter: cattrs.Converter, data: Any) -> Session:
    """A session read field by field: what cannot be read is left unset and kept in ``extra``."""
    try:
        known = _prepare_session(data)
    except ValueError as exc:
        raise ResponseFormatError(f"unreadable session: {exc}") from None
    extra: dict[str, Any] = known.pop("extra")
    fields: dict[str, Any] = {}
    unreadable: list[str] = []
    for name, value in known.items():
        try:
            fields[name] = converter.structure(value, _SESSION_TYPES[name])
        except _STRUCTURE_ERRORS:
            unreadable.append(name)
            extra[name] = value
    if "session_uuid" in unreadable:
        raise ResponseFormatError(f"unreadable session: session_uuid {extra['session_uuid']!r}")
    return Session(**fields, extra=extra, unreadable=tuple(unreadable))


def _read_one(converter: cattrs.Converter, data: Any) -> Session:
    try:
        session: Session = converter.structure(data, Session)
    except _STRUCTURE_ERRORS:
        return _lenient(converter, data)
    return session


def read_session(converter: cattrs.Converter, body: Any) -> Session:
    """The session in a create, retrieve or update answer (whichever envelope it comes in)."""
    if not isinstance(body, Mapping):
        raise ResponseFormatError("unreadable answer: not a JSON object")
    data = body.get("session") or body.get("response")
    if data is None and "session_uuid" in body:
        data = body  # the oldest shape: the session at the top level
    if isinstance(data, Mapping) and "virtual_number" not in data and "virtual_number" in body:
        data = {**data, "virtual_number": body["virtual_number"]}
    return _read_one(converter, data)


def read_page(converter: cattrs.Converter, body: Any) -> SessionPage:
    """A list answer: ``{api_id, response: {meta, objects}}``."""
    response = body.get("response") if isinstance(body, Mapping) else None
    if not isinstance(response, Mapping) or not isinstance(response.get("objects"), list):
        raise ResponseFormatError("unreadable list answer: no response.objects")
    meta: PageMeta = _structure(converter, response.get("meta"), PageMeta, "list meta")
    objects = tuple(_read_one(converter, item) for item in response["objects"])
    return SessionPage(meta=meta, objects=objects, api_id=body.get("api_id"))
