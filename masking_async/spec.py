"""The API's facts, written once: every argument, the list query's limits, the rate, the paths.

The client, the emulator, the batch engine, the load tool and the command line all read these
values from here, so a change to the API is one change to this module (a test over the source
refuses the same facts written as literals anywhere else). This module holds facts only: how
a value is checked lives in :mod:`masking_async.rules`, how it travels in :mod:`masking_async.wire`.

Sources: ``session-api-reference.md`` wins; the legacy overview supplies the limits the newer pages
omit (``session_expiry`` 60-86400, ``call_time_limit`` clamped into 60-86400, URLs of at most 1,000
characters). ``ring_timeout`` has only a documented default (120), which we take as its maximum.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Final, Literal

import attrs

__all__ = [
    "DEFAULT_LIST_WINDOW",
    "DOCUMENTED_RATE",
    "FILTER_OPERATORS",
    "LEGACY_COLLECTION",
    "LEGACY_CREATE_PARAMS",
    "LEGACY_DEFAULTS",
    "LIST_STATUSES",
    "MAX_LIST_WINDOW",
    "MAX_URL_LENGTH",
    "METHODS",
    "PAGE_SIZE",
    "PARAMS",
    "PARTIES",
    "PIN_PATTERN",
    "RECORD_FORMATS",
    "SESSION_COLLECTION",
    "SESSION_FIELDS",
    "SESSION_PATH",
    "SUBACCOUNT_PATTERN",
    "UPDATE_PARAMS",
    "Kind",
    "OnUpdate",
    "Param",
    "Rate",
    "bounds",
]

#: What kind of value an argument takes (the check for each lives in :mod:`.rules`).
Kind = Literal["boolean", "integer", "phone", "url", "play_url", "choice", "pin", "subaccount"]


class OnUpdate(enum.Enum):
    """What the update of an active session does with an argument."""

    #: Accepted and applied.
    ALLOWED = "allowed"
    #: Refused: the reference says it cannot change on an active session.
    REFUSED = "refused"
    #: Not an update argument at all (create only, and not named as refused).
    UNKNOWN = "unknown"


@attrs.frozen
class Param:
    """One create argument as the reference documents it.

    ``bounds`` are inclusive; with ``clamped`` a value outside them is moved to the nearest bound
    instead of refused. ``pattern`` is a regular expression the whole value must match.
    ``default`` is the documented default (``None``: none documented). ``echoed_as`` is the name
    of the session field that shows the value back (``None``: a session does not show it).
    """

    name: str
    kind: Kind
    bounds: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    default: bool | int | str | None = None
    on_update: OnUpdate = OnUpdate.UNKNOWN
    echoed_as: str | None = attrs.field(
        default=attrs.Factory(lambda self: self.name, takes_self=True)
    )
    clamped: bool = False


@attrs.frozen
class Rate:
    """At most ``requests`` per ``per`` seconds."""

    requests: int
    per: float

    @property
    def text(self) -> str:
        """As the command line writes a rate: ``300/5s``."""
        return f"{self.requests}/{self.per:g}s"


# -- arguments ---------------------------------------------------------------------------------

MAX_URL_LENGTH: Final = 1000
METHODS: Final = ("GET", "POST")
RECORD_FORMATS: Final = ("mp3", "wav")
#: A PIN: 4 to 15 digits (``generate_pin_length``'s bounds).
PIN_PATTERN: Final = "[0-9]{4,15}"
#: A subaccount's auth id.
SUBACCOUNT_PATTERN: Final = "SA[A-Za-z0-9]{18}"
_SECONDS: Final = (60, 86400)

_ALLOWED, _REFUSED = OnUpdate.ALLOWED, OnUpdate.REFUSED

#: Every create argument, in the reference's order (read-only, as every fact here).
PARAMS: Final[Mapping[str, Param]] = MappingProxyType(
    {
        p.name: p
        for p in (
            Param("first_party", "phone", on_update=_ALLOWED),
            Param("second_party", "phone", on_update=_ALLOWED),
            Param("geomatch", "boolean", default=True, on_update=_REFUSED, echoed_as=None),
            Param("subaccount", "subaccount", pattern=SUBACCOUNT_PATTERN, on_update=_REFUSED),
            Param(
                "session_expiry",
                "integer",
                bounds=_SECONDS,
                default=3600,
                on_update=_ALLOWED,
                echoed_as="duration",
            ),
            Param(
                "call_time_limit",
                "integer",
                bounds=_SECONDS,
                default=3600,
                on_update=_ALLOWED,
                clamped=True,
            ),
            Param("ring_timeout", "integer", bounds=(1, 120), default=120, on_update=_ALLOWED),
            Param("initiate_call_to_first_party", "boolean", default=False, on_update=_REFUSED),
            Param("callback_url", "url", on_update=_ALLOWED),
            Param("callback_method", "choice", choices=METHODS, default="POST", on_update=_ALLOWED),
            Param("record", "boolean", default=False, on_update=_ALLOWED),
            Param("recording_callback_url", "url", on_update=_ALLOWED),
            Param(
                "record_file_format",
                "choice",
                choices=RECORD_FORMATS,
                default="mp3",
                on_update=_ALLOWED,
            ),
            Param(
                "recording_callback_method",
                "choice",
                choices=METHODS,
                default="POST",
                on_update=_ALLOWED,
            ),
            Param("first_party_play_url", "play_url", on_update=_ALLOWED),
            Param("second_party_play_url", "play_url", on_update=_ALLOWED),
            Param("is_pin_authentication_required", "boolean", default=False, on_update=_REFUSED),
            Param("generate_pin", "boolean", default=False),
            Param("generate_pin_length", "integer", bounds=(4, 15), default=4),
            Param("first_party_pin", "pin", pattern=PIN_PATTERN),
            Param("second_party_pin", "pin", pattern=PIN_PATTERN),
            Param("pin_prompt_play", "play_url", on_update=_REFUSED),
            Param("pin_retry", "integer", bounds=(0, 5), default=1, on_update=_REFUSED),
            Param("pin_retry_wait", "integer", bounds=(5, 10), default=5, on_update=_REFUSED),
            Param("incorrect_pin_play", "play_url", on_update=_REFUSED),
            Param("unknown_caller_play", "play_url", on_update=_REFUSED),
            Param("force_pin_authentication", "boolean", default=False),
            Param("create_session_with_single_party", "boolean", default=False),
            Param(
                "virtual_number_cooloff_period",
                "integer",
                bounds=(0, 3600),
                default=0,
                echoed_as=None,
            ),
        )
    }
)


def bounds(name: str) -> tuple[int, int]:
    """The inclusive bounds of the integer argument ``name``."""
    found = PARAMS[name].bounds
    if found is None:
        raise ValueError(f"{name} is not an integer argument")
    return found


#: The parties: an update may set them only on a single-party session.
PARTIES: Final = ("first_party", "second_party")

#: What an active session accepts on update, as the reference lists them: parties last.
UPDATE_PARAMS: Final = tuple(
    name
    for name, param in PARAMS.items()
    if param.on_update is OnUpdate.ALLOWED and name not in PARTIES
) + tuple(name for name in PARTIES if PARAMS[name].on_update is OnUpdate.ALLOWED)

#: Every field of a session object (the current shape: ``duration``, not ``session_expiry``).
SESSION_FIELDS: Final = frozenset(
    {
        "session_uuid",
        "first_party",
        "second_party",
        "virtual_number",
        "status",
        "duration",
        "call_time_limit",
        "ring_timeout",
        "initiate_call_to_first_party",
        "record",
        "record_file_format",
        "recording_callback_url",
        "recording_callback_method",
        "callback_url",
        "callback_method",
        "first_party_play_url",
        "second_party_play_url",
        "is_pin_authentication_required",
        "generate_pin",
        "generate_pin_length",
        "first_party_pin",
        "second_party_pin",
        "pin_prompt_play",
        "pin_retry",
        "pin_retry_wait",
        "incorrect_pin_play",
        "unknown_caller_play",
        "force_pin_authentication",
        "create_session_with_single_party",
        "subaccount",
        "created_time",
        "modified_time",
        "expiry_time",
        "last_interaction_time",
        "amount",
        "total_call_count",
        "total_call_amount",
        "total_call_billed_duration",
        "total_session_amount",
        "interaction",
        "resource_uri",
    }
)

# -- the first version (the legacy overview) ---------------------------------------------------

#: The legacy create's arguments, in the overview's order (checked as the current ones are,
#: except that a ``call_time_limit`` that is no integer becomes its default).
LEGACY_CREATE_PARAMS: Final = (
    "first_party",
    "second_party",
    "session_expiry",
    "call_time_limit",
    "record",
    "record_file_format",
    "recording_callback_url",
    "recording_callback_method",
)
#: The legacy overview's defaults, which differ from the current API's.
LEGACY_DEFAULTS: Final[Mapping[str, int]] = MappingProxyType(
    {"session_expiry": 1800, "call_time_limit": 14400}
)

# -- listing -----------------------------------------------------------------------------------

#: Sessions per list page: the most the API answers, and its default.
PAGE_SIZE: Final = 20
#: The window a created (or expiry) range gets when it is open on one side.
DEFAULT_LIST_WINDOW: Final = timedelta(days=7)
#: The widest created (or expiry) range one list query may span.
MAX_LIST_WINDOW: Final = timedelta(days=30)
#: The values of the list's ``status`` filter.
LIST_STATUSES: Final = ("active", "expired", "all")
#: The suffixes of a time or duration filter (``created_time__gte``); ``""`` is the exact value.
FILTER_OPERATORS: Final = ("", "__gt", "__gte", "__lt", "__lte")

# -- rate and paths ----------------------------------------------------------------------------

#: The documented limit per account: over any window of 5 s, at most 300 requests.
DOCUMENTED_RATE: Final = Rate(300, 5.0)

#: An account's sessions: ``{auth_id}`` is filled in by the caller (``str.format``).
SESSION_COLLECTION: Final = "/v1/Account/{auth_id}/Masking/Session/"
#: One session.
SESSION_PATH: Final = SESSION_COLLECTION + "{session_uuid}/"
#: The first version's sessions (create and delete only).
LEGACY_COLLECTION: Final = "/v1/Account/{auth_id}/Session/"
