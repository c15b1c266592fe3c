"""List filters from the command line: one language for every command that filters.

``list`` and ``expire`` take the same spelling, ``--where NAME=VALUE`` (repeatable; ``NAME`` as
the API spells it, ``created_time__lt``, or with hyphens), and accept each filter as an option of
its own too (``--created-time--lt VALUE``), so a filter written for one works on the other.

Times are read as people write them: ``list`` prints ``2026-11-26 10:15:57+00:00`` and the API
``... +0000 UTC``; both, ISO 8601 with ``T`` or ``Z``, and the API's own ``YYYY-MM-DD HH:MM[:ss]``
are accepted, so what one command printed can be given back to another; and relative to now,
``1h ago``, ``-2d`` or ``now-30m``, each printed back as the UTC time it resolved to so a
nightly job's log says what it matched. Times are sent in UTC.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from masking_async import rules
from masking_async.cli._errors import UsageError
from masking_async.durations import parse_seconds

__all__ = [
    "FILTER_NAMES",
    "TIME_HELP",
    "add_filter_arguments",
    "check_filters",
    "given_filters",
    "option_name",
    "parse_time",
    "where_pairs",
]

#: The filters a user gives; ``limit`` and ``offset`` belong to pagination.
FILTER_NAMES: Final = tuple(name for name in rules.LIST_FILTERS if name not in ("limit", "offset"))
TIME_HELP: Final = (
    "a UTC time (2026-11-26 10:15, 2026-11-26 10:15:57+00:00, ISO 8601) or one relative to now"
    " (1h ago, -2d, now-30m)"
)
_SEND_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
#: ``now``, ``now-30m``, ``now+1h``, ``-2d``, ``1h ago``.
_RELATIVE: Final = re.compile(
    r"\s*(?:now\s*(?:(?P<sign>[+-])\s*(?P<offset>\S+))?|-(?P<back>\S+)|(?P<ago>\S+)\s+ago)\s*",
    re.IGNORECASE,
)
_FILTER_HELP: Final = {
    "first_party": "sessions with this first party (E.164, + optional)",
    "second_party": "sessions with this second party (E.164, + optional)",
    "virtual_number": "sessions on this virtual number",
    "status": "active, expired or all (the API's default: all)",
    "subaccount": "sessions of this subaccount",
    "created_time": "created at this second; " + TIME_HELP,
    "expiry_time": "expiring at this second; " + TIME_HELP,
    "duration": "sessions of exactly this duration, seconds",
}
_BOUNDS: Final = {
    "__gt": "after",
    "__gte": "at or after",
    "__lt": "before",
    "__lte": "at or before",
}


def _is_time(name: str) -> bool:
    return name.startswith(("created_time", "expiry_time"))


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A filter time in any of the forms the module docstring lists, as an aware UTC datetime;
    relative forms count from ``now`` (the caller's clock, so one command resolves all alike)."""
    if (relative := _RELATIVE.fullmatch(text)) is not None and now is not None:
        return now - timedelta(seconds=_offset(relative))
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


def _offset(match: re.Match[str]) -> float:
    """Seconds back from now that a relative time means (negative: ahead)."""
    text = match["offset"] or match["back"] or match["ago"]
    if text is None:
        return 0.0
    try:
        seconds = parse_seconds(text, unit_required=True)
    except ValueError:
        raise ValueError(TIME_HELP) from None
    return -seconds if match["sign"] == "+" else seconds


def _sendable(name: str, value: str, now: datetime, resolved: list[str]) -> str:
    if not _is_time(name):
        return value
    moment = parse_time(value, now)
    text = moment.strftime(_SEND_FORMAT)
    text = f"{text}.{moment.microsecond:06d}" if moment.microsecond else text
    if _RELATIVE.fullmatch(value):
        resolved.append(f"{name} {value.strip()} = {text} UTC")
    return text


def check_filters(
    filters: Mapping[str, str],
    option: Callable[[str], str],
    *,
    now: datetime | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The filters as the API takes them; a bad one is a UsageError naming ``option(name)``.

    Relative times count from ``now`` (default: the clock, read once) and are reported as the
    absolute times they resolved to.
    """
    now = now or datetime.now(timezone.utc).replace(microsecond=0)  # printed back: keep it short
    clean: dict[str, str] = {}
    resolved: list[str] = []
    for name, value in filters.items():
        if name not in FILTER_NAMES:
            raise UsageError(f"{option(name)}: not a filter of the API ({', '.join(FILTER_NAMES)})")
        try:
            clean[name] = _sendable(name, value, now, resolved)
        except ValueError as exc:
            raise UsageError(f"{option(name)}: {value!r} is not {exc}") from None
    _, violations = rules.check_list_filters(clean)
    if violations:
        first = violations[0]
        raise UsageError(f"{option(first.field)}: {filters.get(first.field)!r} {first.rule}")
    if resolved:
        report(f"note: {'; '.join(resolved)}")
    return clean


def option_name(name: str) -> str:
    """The option of a filter: ``created_time__gt`` is ``--created-time--gt``."""
    return "--" + name.replace("_", "-")


def _filter_help(name: str) -> str:
    base, sep, bound = name.partition("__")
    if not sep:
        return _FILTER_HELP[name]
    what = "duration (seconds)" if base == "duration" else base.replace("_", " ")
    return f"{what} {_BOUNDS['__' + bound]} this value"


def add_filter_arguments(parser: argparse.ArgumentParser, *, implied: str = "") -> None:
    """``--where NAME=VALUE`` and, as aliases, one option per filter (``--status VALUE``)."""
    group = parser.add_argument_group(
        "filters (the API's; --where NAME=VALUE or --NAME VALUE alike; times in UTC)"
    )
    group.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a filter, e.g. status=active or created_time__lt='1h ago' (repeatable)" + implied,
    )
    for name in FILTER_NAMES:
        group.add_argument(
            option_name(name), dest=f"filter_{name}", metavar="VALUE", help=_filter_help(name)
        )


def given_filters(args: argparse.Namespace) -> tuple[dict[str, str], Callable[[str], str]]:
    """The filters of ``--where`` and of the per-filter options, each given at most once, and
    how to name each in a message (as the user spelt it)."""
    found = where_pairs(args.where)
    spelt = {name: f"--where {name}" for name in found}
    for name in FILTER_NAMES:
        value = getattr(args, f"filter_{name}")
        if value is None:
            continue
        if name in found:
            raise UsageError(
                f"{option_name(name)}: given twice (also as --where {name}); a filter takes"
                " one value"
            )
        found[name], spelt[name] = value.strip(), option_name(name)
    return found, lambda name: spelt.get(name, f"--where {name}")


def where_pairs(pairs: list[str]) -> dict[str, str]:
    """``--where NAME=VALUE`` options as a mapping; the shape is checked here, values later."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")  # created-time--lt is created_time__lt
        if not sep or not name:
            raise UsageError(f"--where {pair!r}: expected FILTER=VALUE, e.g. status=active")
        if name in found:  # the API takes one value per filter: never drop one silently
            raise UsageError(f"--where {name}: given twice; a filter takes one value")
        found[name] = value.strip()
    return found
