"""The list query: filters, the created-time window, newest-first pages.

Which sessions are looked at decides the cost (see :mod:`masking_async.emulator.index`): the
created-time window becomes a range of creation sequence numbers; status and one equality filter
(party, virtual number, subaccount) pick an index, so the page is read by position in
O(log n + limit) at any offset. Further filters (a second party, ``expiry_time``, ``duration``)
are tested while walking the smallest indexed set.

The spec's window: without a ``created_time`` filter, the last 7 days of the clock; with only an
upper bound, the 7 days before it; a range wider than 30 days is refused. An ``expiry_time``
range wider than 30 days is refused too; a one-sided one covers 7 days from its bound. An exact
``created_time`` or ``expiry_time`` matches the span of its written precision (minute, second or
microsecond), so the microsecond time a session shows matches it, and ``__lte`` agrees.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from masking_async import spec
from masking_async.emulator.index import Run, Source, Union
from masking_async.emulator.records import (
    KEY_FIELDS,
    AccountState,
    InvalidOperation,
    SessionRecord,
)
from masking_async.rules import TimeSpan

__all__ = ["DEFAULT_WINDOW", "MAX_WINDOW", "Page", "query"]

DEFAULT_WINDOW: Final = spec.DEFAULT_LIST_WINDOW.total_seconds()
MAX_WINDOW: Final = spec.MAX_LIST_WINDOW.total_seconds()
DEFAULT_LIMIT: Final = spec.PAGE_SIZE

_COMPARE: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
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
        raise InvalidOperation(
            f"{field}: the range must span at most {spec.MAX_LIST_WINDOW.days} days"
        )


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


def _created(record: SessionRecord) -> float:
    return record.created


def _first_position(state: AccountState, value: float, *, after: bool) -> int:
    """The first position in ``state.all`` created at or after ``value`` (strictly after with
    ``after``): a bisection, since created times never decrease along ``seq``."""
    search = bisect.bisect_right if after else bisect.bisect_left
    return search(state.all, value, key=_created)


def _seq_window(state: AccountState, bounds: list[Bound]) -> tuple[int, int]:
    """The created-time bounds as a range of ``seq`` ``[lo, hi)``: O(log² n)."""
    start, end = 0, len(state.all)
    for op, value in bounds:
        index = _first_position(state, value, after=op in ("gt", "lte"))
        if op.startswith("g"):
            start = max(start, index)
        else:
            end = min(end, index)
    if start >= end:
        return 0, 0

    def seq_at(position: int) -> int:
        return state.all[position].seq if position < len(state.all) else state.next_seq

    return seq_at(start), seq_at(end)


def _compares(attribute: str, op: str, value: float) -> Predicate:
    compare = _COMPARE[op]
    return lambda record: compare(getattr(record, attribute), value)


def _source(
    state: AccountState, field: str | None, value: Any, status: str, window: tuple[int, int]
) -> Source:
    """The indexed sessions of one status (and one field value) inside the seq window."""
    if field is None:
        view = {"active": state.active, "expired": state.expired, "all": state.all}[status]
        return Run(view, *window)
    if status != "all":
        return Run(state.keyed[status][field].get(value), *window)
    return Union(
        Run(state.keyed["active"][field].get(value), *window),
        Run(state.keyed["expired"][field].get(value), *window),
    )


def query(state: AccountState, filters: Mapping[str, Any], now: float) -> Page:
    """Run a list query over one account's sessions.

    Status, one equality filter and the created window are answered by an index: the page
    costs O(log n + limit) at any offset. With more filters the smallest indexed set (each
    set's size is known in O(log n)) is walked and the rest are tested on each session.
    """
    limit = filters.get("limit", DEFAULT_LIMIT)
    offset = filters.get("offset", 0)
    window = _seq_window(state, _created_bounds(filters, now))
    status = filters.get("status", "all")
    keyed = [(field, filters[field]) for field in KEY_FIELDS if field in filters]
    sources: list[tuple[str | None, Source]] = [
        (field, _source(state, field, value, status, window)) for field, value in keyed
    ]
    if not sources:
        sources = [(None, _source(state, None, None, status, window))]
    chosen, source = min(sources, key=lambda pair: len(pair[1]))
    tests = [_compares(field, "eq", value) for field, value in keyed if field != chosen]
    tests += [_compares("expiry", op, value) for op, value in _expiry_bounds(filters)]
    tests += [_compares("duration", op, value) for op, value in _bounds(filters, "duration")]
    if not tests:
        return Page(source.newest(offset, limit), len(source), limit, offset)
    matched: list[SessionRecord] = []
    total = 0
    for record in source.descending():
        if all(test(record) for test in tests):
            if offset <= total < offset + limit:
                matched.append(record)
            total += 1
    return Page(matched, total, limit, offset)
