"""The spec's argument rules, in one place for the client, the emulator and the batch engine.

Every check works on wire values (what JSON carries: ``bool``, ``int``, ``str``) and returns the
normalised parameters together with every :class:`Violation` found, so a caller can report all of
them at once (the batch engine's dry run) or refuse on the first (the emulator's 400).

The facts these checks enforce (every argument's kind, range, pattern and default, what an update
may change, the page size and the list windows) are :mod:`masking_async.spec`'s; this module turns
them into checks.

The first version of the API (``/v1/Account/{auth_id}/Session/``, the legacy overview) takes a
subset of the same arguments with the same checks, its own defaults, and a ``call_time_limit``
that is never refused: :data:`LEGACY_CREATE_FIELDS` and :func:`check_legacy_create`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import phonenumbers
from phonenumbers import phonenumberutil as _pnu
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.re_util import re_compile as _re_compile

from masking_async import spec

__all__ = [
    "CREATE_FIELDS",
    "DEFAULT_LIST_WINDOW",
    "IMMUTABLE_ON_UPDATE",
    "LEGACY_CREATE_FIELDS",
    "LEGACY_DEFAULTS",
    "LIST_FILTERS",
    "MAX_LIST_WINDOW",
    "UPDATE_FIELDS",
    "TimeSpan",
    "Violation",
    "check_create",
    "check_expire",
    "check_legacy_create",
    "check_list_filters",
    "check_session_uuid",
    "check_update",
    "coerce_text",
    "format_timestamp",
    "normalize_party",
    "parse_filter_span",
    "parse_filter_time",
]


@attrs.frozen
class Violation:
    """One broken rule: the field it concerns and the rule in plain words."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class _Invalid(Exception):
    """Raised by a field check; turned into a :class:`Violation` by the caller."""


Check = Callable[[Any], Any]

MAX_URL_LENGTH: Final = spec.MAX_URL_LENGTH


SESSION_EXPIRY_RANGE: Final = spec.bounds("session_expiry")
CALL_TIME_LIMIT_RANGE: Final = spec.bounds("call_time_limit")
_PIN = re.compile(spec.PIN_PATTERN)
#: The API's session ids are UUIDs (8-4-4-4-12 hex digits); nothing else may reach a URL path.
_SESSION_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_SUBACCOUNT = re.compile(spec.SUBACCOUNT_PATTERN)


# -- field checks: each takes a wire value and returns it normalised, or raises _Invalid --------


def _boolean(value: Any) -> bool:
    """JSON booleans, and ``"true"``/``"false"`` as the update page's own example sends them."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise _Invalid("must be a boolean (true or false)")
    return value


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("must be an integer")
        if not low <= value <= high:
            raise _Invalid(f"must be between {low} and {high}")
        return value

    return check


def _clamped(low: int, high: int, *, invalid: int | None = None) -> Check:
    """``call_time_limit``: the legacy API sets values outside the range to its nearest bound,
    and (given ``invalid``) a value that is no integer at all to ``invalid`` instead of refusing."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if invalid is not None:
                return invalid
            raise _Invalid("must be an integer")
        return min(max(value, low), high)

    return check


def check_session_uuid(value: Any) -> list[Violation]:
    """A session id as the API makes them; anything else would change the URL it is put in."""
    if isinstance(value, str) and _SESSION_UUID.fullmatch(value):
        return []
    return [Violation("session_uuid", "must be a session id (a UUID such as 4189591e-d004-...)")]


def normalize_party(value: Any) -> str:
    """Return a phone number in E.164 (``+`` and digits); the ``+`` may be missing on input."""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("must be a phone number in E.164 format")
    return _normalize_text(value.strip())


@functools.lru_cache(maxsize=65_536)
def _normalize_text(text: str) -> str:
    """Checking costs ~15 µs; files repeat parties (a driver, many riders), so remember some."""
    digits = text[1:] if text.startswith("+") else text
    if not digits.isdigit():
        raise _Invalid("must be a phone number in E.164 format (digits, optional leading +)")
    try:
        code, national = _split_international(digits)
    except phonenumbers.NumberParseException as exc:
        raise _Invalid("must be a phone number in E.164 format") from exc
    if not _is_valid(code, national):
        raise _Invalid("must be a valid phone number (E.164)")
    return f"+{code}{national}"  # format_number(..., E164) of a number parsed without raw input


#: ``parse``'s results that keep a national prefix on the number (it may be a short number).
_KEEP_PREFIX: Final = (
    _pnu.ValidationResult.TOO_SHORT,
    _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _pnu.ValidationResult.INVALID_LENGTH,
)


def _parsed(digits: str) -> tuple[int, str]:
    """What ``phonenumbers.parse`` makes of ``+`` and ``digits``: the country code and the
    national significant number (leading zeros kept)."""
    number = phonenumbers.parse("+" + digits)
    assert number.country_code is not None  # parse raises rather than leave it unset
    return number.country_code, phonenumbers.national_significant_number(number)


def _split_international(digits: str) -> tuple[int, str]:
    """:func:`_parsed`, at a fifth of the cost for plain ASCII digits.

    Most of ``parse`` looks for a number in free text (punctuation, extensions, RFC 3966);
    for ``+`` and digits only, what is left are the steps below, in phonenumbers' own functions
    and order: country code, national prefix, length. Anything else (too short, no such country
    code, other digits than ASCII) goes to ``parse`` itself, which raises. The national digits
    kept as text are the national significant number, leading zeros included. A test compares
    the two over every country code.
    """
    if not (3 <= len(digits) <= 200 and digits.isascii()):
        return _parsed(digits)
    code, national = _pnu._extract_country_code(digits)
    if code == 0 or len(national) < _pnu._MIN_LENGTH_FOR_NSN:
        return _parsed(digits)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if metadata is None:  # never, for a code _extract_country_code found (parse asserts it)
        return _parsed(digits)
    _, stripped, _ = _pnu._maybe_strip_national_prefix_carrier_code(national, metadata)
    if _pnu._test_number_length(stripped, metadata) not in _KEEP_PREFIX:
        national = stripped
    if not _pnu._MIN_LENGTH_FOR_NSN <= len(national) <= _pnu._MAX_LENGTH_FOR_NSN:
        return _parsed(digits)
    return code, national


#: The number types besides fixed line and mobile, in no particular order: any one will do.
_OTHER_TYPES: Final = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


def _has_type(national: str, metadata: PhoneMetadata) -> bool:
    """``phonenumbers``' type lookup is not ``UNKNOWN``: it stops at the first type that fits,
    fixed line and mobile first, instead of testing every type in the library's order."""
    matches = _pnu._is_number_matching_desc
    if not matches(national, metadata.general_desc):
        return False
    if matches(national, metadata.fixed_line):
        return True
    # The library tests mobile apart only when its pattern differs from fixed line's.
    if not metadata.same_mobile_and_fixed_line_pattern and matches(national, metadata.mobile):
        return True
    return any(matches(national, getattr(metadata, name)) for name in _OTHER_TYPES)


def _is_valid(code: int, national: str) -> bool:
    """``phonenumbers.is_valid_number`` of the number with country code ``code`` and national
    significant number ``national``, with the type lookup validity needs (``_has_type``), done
    once where the library does it twice (a region found by its type, then checked). A test
    compares the two."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
    if not regions:
        return False
    if len(regions) == 1:
        region = regions[0]
    else:  # the library's _region_code_for_number_from_list
        for candidate in regions:
            metadata = PhoneMetadata.metadata_for_region(candidate.upper(), None)
            if metadata is None:
                continue
            if metadata.leading_digits is not None:
                if _re_compile(metadata.leading_digits).match(national):
                    region = candidate
                    break
            elif _has_type(national, metadata):
                return True  # checking it against the region it came from finds the same type
        else:
            return False
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
    if metadata is None or (
        region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        and code != phonenumbers.country_code_for_valid_region(region)
    ):
        return False
    return _has_type(national, metadata)


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be a URL")
    if len(value) > MAX_URL_LENGTH:
        raise _Invalid(f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Invalid("must be an http or https URL")
    return value


def _play_url(value: Any) -> str:
    url = _url(value)
    if not urlsplit(url).path.lower().endswith((".mp3", ".wav")):
        raise _Invalid("must be the URL of an .mp3 or .wav file")
    return url


def _choice(*allowed: str) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in {a.lower() for a in allowed}:
            raise _Invalid("must be one of " + ", ".join(allowed))
        return next(a for a in allowed if a.lower() == value.lower())

    return check


def _pin(value: Any) -> str:
    # The spec's own cURL example sends PINs as JSON numbers; accept them as their digits.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _PIN.fullmatch(value):
        raise _Invalid("must be 4 to 15 digits")
    return value


def _subaccount(value: Any) -> str:
    if not isinstance(value, str) or not _SUBACCOUNT.fullmatch(value):
        raise _Invalid("must be a subaccount auth id (SA followed by 18 characters)")
    return value


def _check_for(param: spec.Param) -> Check:
    """The check of one argument, built from its facts."""
    if param.kind == "integer":
        low, high = spec.bounds(param.name)
        return _clamped(low, high) if param.clamped else _integer(low, high)
    if param.kind == "choice":
        return _choice(*param.choices)
    return _KIND_CHECKS[param.kind]


_KIND_CHECKS: Final[Mapping[str, Check]] = {
    "boolean": _boolean,
    "phone": normalize_party,
    "url": _url,
    "play_url": _play_url,
    "pin": _pin,
    "subaccount": _subaccount,
}

#: Every create argument and its check, in the order of the spec.
CREATE_FIELDS: Final[Mapping[str, Check]] = {
    name: _check_for(param) for name, param in spec.PARAMS.items()
}

#: What an active session accepts on update (parties only for single-party sessions).
UPDATE_FIELDS: Final[Mapping[str, Check]] = {
    name: CREATE_FIELDS[name] for name in spec.UPDATE_PARAMS
}

#: The fields the spec says cannot change on an active session (parties are handled apart).
IMMUTABLE_ON_UPDATE: Final = frozenset(
    name for name, param in spec.PARAMS.items() if param.on_update is spec.OnUpdate.REFUSED
)

#: Sent by the official SDKs in update and expire bodies; tolerated, never applied.
SDK_ECHO_FIELDS: Final = frozenset({"session_uuid"})

_PIN_FIELDS: Final = ("first_party_pin", "second_party_pin")


def _check_fields(
    params: Mapping[str, Any], fields: Mapping[str, Check], violations: list[Violation]
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in params.items():
        check = fields.get(name)
        if check is None or value is None:
            continue
        try:
            clean[name] = check(value)
        except _Invalid as exc:
            violations.append(Violation(name, str(exc)))
    return clean


def _unknown(params: Mapping[str, Any], known: Mapping[str, Check]) -> list[str]:
    """Names not in ``known``; ``session_uuid`` is tolerated only in update/expire bodies."""
    return [name for name in params if name not in known]


def _check_parties(
    params: Mapping[str, Any],
    clean: Mapping[str, Any],
    required: tuple[str, ...],
    violations: list[Violation],
) -> None:
    for name in required:
        if params.get(name) is None:
            violations.append(Violation(name, "is required"))
    if "first_party" in clean and clean.get("second_party") == clean["first_party"]:
        violations.append(Violation("second_party", "must differ from first_party"))


def check_create(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Check create arguments; return the normalised ones (``None`` dropped) and the violations."""
    violations = [
        Violation(name, "is not a known parameter") for name in _unknown(params, CREATE_FIELDS)
    ]
    clean = _check_fields(params, CREATE_FIELDS, violations)
    bad = {v.field for v in violations}

    single = clean.get("create_session_with_single_party", False)
    required = ("first_party",) if single else ("first_party", "second_party")
    _check_parties(params, clean, required, violations)

    pin_auth = clean.get("is_pin_authentication_required", False)
    generate = clean.get("generate_pin", False)
    if pin_auth:
        for name in ("pin_prompt_play", "incorrect_pin_play"):
            if params.get(name) is None:
                violations.append(
                    Violation(name, "is required when is_pin_authentication_required is true")
                )
        for name in _PIN_FIELDS:
            if generate and params.get(name) is not None:
                violations.append(Violation(name, "must not be given when generate_pin is true"))
            elif not generate and params.get(name) is None:
                violations.append(
                    Violation(
                        name,
                        "is required when is_pin_authentication_required is true"
                        " and generate_pin is false",
                    )
                )
    else:
        for name in ("generate_pin", "force_pin_authentication"):
            if clean.get(name):
                violations.append(
                    Violation(name, "requires is_pin_authentication_required to be true")
                )
        for name in _PIN_FIELDS:
            if params.get(name) is not None and name not in bad:
                violations.append(
                    Violation(name, "requires is_pin_authentication_required to be true")
                )
    if "generate_pin_length" in clean and not generate:
        violations.append(Violation("generate_pin_length", "requires generate_pin to be true"))
    pins = [clean.get(name) for name in _PIN_FIELDS]
    if pins[0] is not None and pins[0] == pins[1]:
        violations.append(Violation("second_party_pin", "must differ from first_party_pin"))
    return clean, violations


def check_update(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Check update arguments that do not depend on the session (see the emulator for those)."""
    violations: list[Violation] = []
    for name in params:
        if name in IMMUTABLE_ON_UPDATE:
            violations.append(Violation(name, "cannot be updated on an active session"))
        elif name not in UPDATE_FIELDS and name not in SDK_ECHO_FIELDS:
            violations.append(Violation(name, "is not a parameter that can be updated"))
    clean = _check_fields(params, UPDATE_FIELDS, violations)
    if "first_party" in clean and clean.get("second_party") == clean["first_party"]:
        violations.append(Violation("second_party", "must differ from first_party"))
    if not clean and not violations:
        violations.append(Violation("(body)", "at least one parameter to update is required"))
    return clean, violations


def check_expire(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Check an expire (DELETE) body: it carries nothing but, from the SDKs, ``session_uuid``."""
    violations = [
        Violation(name, "is not a known parameter")
        for name in params
        if name not in SDK_ECHO_FIELDS
    ]
    return {}, violations


# -- the first version: POST /v1/Account/{auth_id}/Session/ -----------------------------------

#: The legacy overview's defaults, which differ from the current API's.
LEGACY_DEFAULTS: Final[Mapping[str, int]] = spec.LEGACY_DEFAULTS

#: The legacy create's arguments, in the overview's order: the current checks, except that a
#: ``call_time_limit`` that is no integer becomes the default instead of an error.
LEGACY_CREATE_FIELDS: Final[Mapping[str, Check]] = {
    name: CREATE_FIELDS[name] for name in spec.LEGACY_CREATE_PARAMS
} | {
    "call_time_limit": _clamped(*CALL_TIME_LIMIT_RANGE, invalid=LEGACY_DEFAULTS["call_time_limit"])
}


def check_legacy_create(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Check legacy create arguments; the normalised ones come back with the defaults filled in.

    ``session_expiry: 0`` counts as not sent: the official Go SDK's legacy parameters always
    carry the field (``0`` when unset), so the overview's own example sends it.
    """
    given = {
        name: value
        for name, value in params.items()
        if not (name == "session_expiry" and type(value) is int and value == 0)
    }
    violations = [
        Violation(name, "is not a known parameter")
        for name in _unknown(given, LEGACY_CREATE_FIELDS)
    ]
    clean = _check_fields(given, LEGACY_CREATE_FIELDS, violations)
    _check_parties(given, clean, ("first_party", "second_party"), violations)
    return {**LEGACY_DEFAULTS, **clean}, violations


# -- list filters ------------------------------------------------------------------------------

#: The spec's list windows: when a created (or expiry) range is open, and at most.
DEFAULT_LIST_WINDOW: Final = spec.DEFAULT_LIST_WINDOW
MAX_LIST_WINDOW: Final = spec.MAX_LIST_WINDOW
_TIME_FORMATS: Final = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")
_OPS: Final = spec.FILTER_OPERATORS
MAX_PAGE_SIZE: Final = spec.PAGE_SIZE


def parse_filter_time(value: str) -> datetime:
    """Parse a list filter time, ``YYYY-MM-DD HH:MM[:ss[.uuuuuu]]``, as UTC."""
    text = value.strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise _Invalid("must be a time as YYYY-MM-DD HH:MM[:ss[.uuuuuu]]")


@attrs.frozen
class TimeSpan:
    """An exact time filter: every instant that, written to the filter's precision, reads as it.

    ``created_time=2024-02-01 06:28`` is the whole minute, ``...06:28:15`` the whole second,
    ``...06:28:15.250000`` that microsecond, so the time a session shows always matches itself.
    """

    start: datetime
    width: timedelta

    @property
    def end(self) -> datetime:
        return self.start + self.width


_PRECISION: Final = (
    timedelta(minutes=1),
    timedelta(seconds=1),
    timedelta(microseconds=1),
)


def parse_filter_span(value: str) -> TimeSpan:
    """Parse an exact time filter (``created_time=``, ``expiry_time=``) into its span."""
    start = parse_filter_time(value)
    text = value.strip()
    precision = 2 if "." in text else (1 if text.count(":") == 2 else 0)
    return TimeSpan(start, _PRECISION[precision])


def format_timestamp(moment: datetime) -> str:
    """Format a time the way the API answers: ``2023-07-12 15:52:14.772699 +0000 UTC``.

    As the recorded answers show (Go's default time format): microseconds with trailing zeros
    dropped, none at all on a whole second (``2024-02-01 06:28:15 +0000 UTC``).
    """
    utc = moment.astimezone(timezone.utc)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return utc.strftime("%Y-%m-%d %H:%M:%S") + fraction + " +0000 UTC"


#: Digits a numeric filter may have: far beyond any duration or offset, far below the length at
#: which ``int()`` refuses text (4,300 digits), so an absurd value is a violation, not a crash.
MAX_FILTER_DIGITS: Final = 18


def _non_negative(value: Any) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise _Invalid("must be a non-negative integer")
    if len(text.lstrip("0")) > MAX_FILTER_DIGITS:
        raise _Invalid(f"must be a non-negative integer of at most {MAX_FILTER_DIGITS} digits")
    return int(text)


def _page_size(value: Any) -> int:
    size = _non_negative(value)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _Invalid(f"must be between 1 and {MAX_PAGE_SIZE}")
    return size


def _filter_party(value: Any) -> str:
    return normalize_party(str(value))


def _filter_virtual_number(value: Any) -> str:
    text = str(value).strip().removeprefix("+")
    if not text.isdigit():
        raise _Invalid("must be a phone number, with or without +")
    return "+" + text


#: Every list query parameter and its check (values arrive as query-string text).
LIST_FILTERS: Final[Mapping[str, Check]] = {
    "first_party": _filter_party,
    "second_party": _filter_party,
    "virtual_number": _filter_virtual_number,
    "status": _choice(*spec.LIST_STATUSES),
    "subaccount": _subaccount,
    "limit": _page_size,
    "offset": _non_negative,
    **{f"created_time{op}": parse_filter_time for op in _OPS if op},
    **{f"expiry_time{op}": parse_filter_time for op in _OPS if op},
    "created_time": parse_filter_span,
    "expiry_time": parse_filter_span,
    **{f"duration{op}": _non_negative for op in _OPS},
}


def check_list_filters(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Check list query parameters; times become aware datetimes, numbers ints."""
    violations = [
        Violation(name, "is not a known filter") for name in _unknown(params, LIST_FILTERS)
    ]
    return _check_fields(params, LIST_FILTERS, violations), violations


# -- text input (CSV cells, command-line values) -----------------------------------------------

_BOOL_FIELDS: Final = frozenset(name for name, check in CREATE_FIELDS.items() if check is _boolean)
_INT_FIELDS: Final = frozenset(
    name for name, param in spec.PARAMS.items() if param.kind == "integer"
)
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})


def coerce_text(params: Mapping[str, str]) -> tuple[dict[str, Any], list[Violation]]:
    """Turn text cells into wire types: booleans and integers parsed, empty cells dropped."""
    out: dict[str, Any] = {}
    violations: list[Violation] = []
    for name, raw in params.items():
        text = raw.strip()
        if not text:
            continue
        if name in _BOOL_FIELDS:
            if text.lower() in _TRUE:
                out[name] = True
            elif text.lower() in _FALSE:
                out[name] = False
            else:
                violations.append(Violation(name, "must be true or false"))
        elif name in _INT_FIELDS:
            try:
                out[name] = int(text)
            except ValueError:
                violations.append(Violation(name, "must be an integer"))
        else:
            out[name] = text
    return out, violations
