"""List filters from the command line, checked before any request, times read as people write.

``list`` prints times as ``2026-11-26 10:15:57+00:00`` and the API as ``... +0000 UTC``; both,
ISO 8601 with ``T`` or ``Z``, and the API's own ``YYYY-MM-DD HH:MM[:ss]`` are accepted as filter
values, so what one command printed can be given back to another. Times are sent in UTC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from masking_async import rules
from masking_async.cli._errors import UsageError

__all__ = ["FILTER_NAMES", "TIME_HELP", "check_filters", "parse_time", "where_pairs"]

#: The filters a user gives; ``limit`` and ``offset`` belong to pagination.
FILTER_NAMES: Final = tuple(name for name in rules.LIST_FILTERS if name not in ("limit", "offset"))
TIME_HELP: Final = "a UTC time: 2026-11-26 10:15, 2026-11-26 10:15:57+00:00 or ISO 8601"
_SEND_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def _is_time(name: str) -> bool:
    return name.startswith(("created_time", "expiry_time"))


def parse_time(text: str) -> datetime:
    """A filter time in any of the forms the module docstring lists, as an aware UTC datetime."""
    with contextlib.suppress(Exception):  # rules' own error type is private
        return rules.parse_filter_time(text)
    iso = text.strip().replace(" +0000 UTC", "+00:00").replace(" UTC", "+00:00")
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(TIME_HELP) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _sendable(name: str, value: str) -> str:
    if not _is_time(name):
        return value
    moment = parse_time(value)
    text = moment.strftime(_SEND_FORMAT)
    return f"{text}.{moment.microsecond:06d}" if moment.microsecond else text


def check_filters(filters: Mapping[str, str], option: Callable[[str], str]) -> dict[str, Any]:
    """The filters as the API takes them; a bad one is a UsageError naming ``option(name)``."""
    clean: dict[str, str] = {}
    for name, value in filters.items():
        if name not in FILTER_NAMES:
            raise UsageError(f"{option(name)}: not a filter of the API ({', '.join(FILTER_NAMES)})")
        try:
            clean[name] = _sendable(name, value)
        except ValueError as exc:
            raise UsageError(f"{option(name)}: {value!r} is not {exc}") from None
    _, violations = rules.check_list_filters(clean)
    if violations:
        first = violations[0]
        raise UsageError(f"{option(first.field)}: {filters.get(first.field)!r} {first.rule}")
    return clean


def where_pairs(pairs: list[str]) -> dict[str, str]:
    """``--where NAME=VALUE`` options as a mapping; the shape is checked here, values later."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--where {pair!r}: expected FILTER=VALUE, e.g. status=active")
        if name.strip() in found:  # the API takes one value per filter: never drop one silently
            raise UsageError(f"--where {name.strip()}: given twice; a filter takes one value")
        found[name.strip()] = value.strip()
    return found
