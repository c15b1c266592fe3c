"""The list query: filters, the created-time window, newest-first pages.

Which sessions are looked at decides the cost. A party filter starts from that party's sessions
(the per-party index); otherwise the account's creation-ordered list is cut to the created-time
window by binary search, so an unfiltered page of a huge account costs a slice, and only the
filters the index cannot answer (status, number, duration...) walk the window.

The spec's window: without a ``created_time`` filter, the last 7 days of the clock; with only an
upper bound, the 7 days before it; a range wider than 30 days is refused. An ``expiry_time``
range wider than 30 days is refused too; a one-sided one covers 7 days from its bound. An exact
``created_time`` or ``expiry_time`` matches the span of its written precision (minute, second or
microsecond), so the microsecond time a session shows matches it, and ``__lte`` agrees.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from masking_async.emulator.records import AccountState, InvalidOperation, SessionRecord
from masking_async.rules import TimeSpan

__all__ = ["DEFAULT_WINDOW", "MAX_WINDOW", "Page", "query"]

DAY: Final = 86400.0
DEFAULT_WINDOW: Final = 7 * DAY
MAX_WINDOW: Final = 30 * DAY
DEFAULT_LIMIT: Final = 20

_COMPARE: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
Predicate = Callable[[SessionRecord], bool]
Bound = tuple[str, float]


@attrs.frozen
class Page:
    """One page of sessions, newest first, and how many match in all."""

    objects: Sequence[SessionRecord]
    total_count: int
    limit: int
    offset: int


def _bounds(filters: Mapping[str, Any], field: str) -> list[Bound]:
    """The filters on one time or number field as (operator, value).

    An exact time is the span its precision covers (:class:`~masking_async.rules.TimeSpan`); a
    bare datetime, as Python callers may pass, is that one microsecond.
    """
    bounds: list[Bound] = []
    for key, value in filters.items():
        name, _, op = key.partition("__")
        if name != field:
            continue
        if isinstance(value, TimeSpan):
            bounds += [("gte", value.start.timestamp()), ("lt", value.end.timestamp())]
            continue
        number = value.timestamp() if isinstance(value, datetime) else float(value)
        bounds += [(op, number)] if op else [("gte", number), ("lte", number)]
    return bounds


def _lowers(bounds: list[Bound]) -> list[float]:
    return [value for op, value in bounds if op.startswith("g")]


def _uppers(bounds: list[Bound]) -> list[float]:
    return [value for op, value in bounds if op.startswith("l")]


def _check_span(field: str, bounds: list[Bound], now: float | None) -> None:
    lowers, uppers = _lowers(bounds), _uppers(bounds)
    upper = min(uppers) if uppers else now
    if lowers and upper is not None and upper - max(lowers) > MAX_WINDOW:
        raise InvalidOperation(f"{field}: the range must span at most 30 days")


def _created_bounds(filters: Mapping[str, Any], now: float) -> list[Bound]:
    bounds = _bounds(filters, "created_time")
    if not _lowers(bounds):
        uppers = _uppers(bounds)
        bounds.append(("gte", (min(uppers) if uppers else now) - DEFAULT_WINDOW))
    _check_span("created_time", bounds, now)
    return bounds


def _expiry_bounds(filters: Mapping[str, Any]) -> list[Bound]:
    """The spec's 7-day default window, here for expiry_time: a one-sided range gets the 7 days
    after its lower bound or before its upper bound; no expiry filter, no window."""
    bounds = _bounds(filters, "expiry_time")
    lowers, uppers = _lowers(bounds), _uppers(bounds)
    if lowers and not uppers:
        bounds.append(("lte", max(lowers) + DEFAULT_WINDOW))
    elif uppers and not lowers:
        bounds.append(("gte", min(uppers) - DEFAULT_WINDOW))
    _check_span("expiry_time", bounds, None)
    return bounds


def _slice(records: list[SessionRecord], bounds: list[Bound]) -> list[SessionRecord]:
    """Cut a creation-ordered list to the created-time bounds by binary search."""

    def created(record: SessionRecord) -> float:
        return record.created

    start, end = 0, len(records)
    for op, value in bounds:
        if op in ("gt", "lte"):
            index = bisect_right(records, value, key=created)
        else:
            index = bisect_left(records, value, key=created)
        if op.startswith("g"):
            start = max(start, index)
        else:
            end = min(end, index)
    return records[start:end] if start < end else []


def _equals(attribute: str, value: Any) -> Predicate:
    return lambda record: bool(getattr(record, attribute) == value)


def _compares(attribute: str, op: str, value: float) -> Predicate:
    compare = _COMPARE[op]
    return lambda record: compare(getattr(record, attribute), value)


def _predicates(filters: Mapping[str, Any]) -> list[Predicate]:
    """Every filter but created_time (the window), as a test on one record."""
    tests = [
        _equals(name, filters[name])
        for name in ("first_party", "second_party", "virtual_number", "subaccount")
        if name in filters
    ]
    status = filters.get("status", "all")
    if status != "all":
        tests.append(_equals("active", status == "active"))
    tests += [_compares("expiry", op, value) for op, value in _expiry_bounds(filters)]
    tests += [_compares("duration", op, value) for op, value in _bounds(filters, "duration")]
    return tests


def _candidates(state: AccountState, filters: Mapping[str, Any], now: float) -> list[SessionRecord]:
    created = _created_bounds(filters, now)
    parties = [filters[name] for name in ("first_party", "second_party") if name in filters]
    if not parties:
        return _slice(state.ordered, created)
    shortest = min((state.by_party.get(party) for party in parties), key=len)
    in_window = [
        r for r in shortest if all(_COMPARE[op](r.created, value) for op, value in created)
    ]
    return sorted(in_window, key=lambda r: r.created)  # parties changed by update come last


def query(state: AccountState, filters: Mapping[str, Any], now: float) -> Page:
    """Run a list query over one account's sessions."""
    limit = filters.get("limit", DEFAULT_LIMIT)
    offset = filters.get("offset", 0)
    candidates = _candidates(state, filters, now)
    tests = _predicates(filters)
    if not tests:
        end = max(len(candidates) - offset, 0)
        page = candidates[max(end - limit, 0) : end][::-1]
        return Page(page, len(candidates), limit, offset)
    matched: list[SessionRecord] = []
    total = 0
    for record in reversed(candidates):
        if all(test(record) for test in tests):
            if offset <= total < offset + limit:
                matched.append(record)
            total += 1
    return Page(matched, total, limit, offset)
