"""Listing every page fast: the first page gives the total, the rest are fetched concurrently.

Pages are fetched ``concurrency`` at a time, each next one sent as soon as one is in (a wave
of answers that come back together is read one by one: the next wave should not wait for the
last of them), in runs of ``RUN_BATCHES`` batches yielded in order, so memory holds at most one
run of pages. The list is newest first and may change while we read it: sessions created
meanwhile push older ones to later offsets (seen twice: dropped by id), and a full last page
means more arrived (we keep reading until a short page). A range of ``created_time`` wider than
the API's 30-day maximum is split into windows, listed one after another, each in parallel.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

import anyio

from masking_async import spec
from masking_async.models import Session, SessionPage
from masking_async.wire import parse_time

__all__ = ["iter_pages", "split_windows"]

PAGE_SIZE: Final = spec.PAGE_SIZE
#: Pages fetched before any is yielded, in batches of ``concurrency``: a run ends with its
#: slowest page, so longer runs lose less to that wait, and hold more pages in memory.
RUN_BATCHES: Final = 8
MAX_WINDOW: Final = spec.MAX_LIST_WINDOW
FetchPage = Callable[[Mapping[str, Any], int], Awaitable[SessionPage]]


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    moment = parse_time(str(value))
    assert moment is not None
    return moment


def split_windows(filters: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """One filter set per window of at most 30 days, newest window first."""
    lower_key = next((k for k in ("created_time__gte", "created_time__gt") if k in filters), None)
    if lower_key is None:
        return [dict(filters)]
    upper_key = next((k for k in ("created_time__lt", "created_time__lte") if k in filters), None)
    lower = _moment(filters[lower_key])
    upper = _moment(filters[upper_key]) if upper_key else now
    if upper - lower <= MAX_WINDOW:
        return [dict(filters)]
    base = {k: v for k, v in filters.items() if k not in (lower_key, upper_key)}
    windows: list[dict[str, Any]] = []
    end, end_key = upper, upper_key or "created_time__lte"
    while end > lower:
        start = max(lower, end - MAX_WINDOW)
        windows.append(
            {**base, lower_key if start == lower else "created_time__gte": start, end_key: end}
        )
        end, end_key = start, "created_time__lt"
    return windows


async def _window(
    fetch: FetchPage, filters: Mapping[str, Any], concurrency: int
) -> AsyncIterator[SessionPage]:
    page = await fetch(filters, 0)
    yield page
    offset, total = PAGE_SIZE, page.meta.total_count
    # Go on while the last page was full and the total (re-read from every page) says more.
    while len(page.objects) == PAGE_SIZE and offset < total:
        count = min(RUN_BATCHES * concurrency, -(-(total - offset) // PAGE_SIZE))
        offsets = [offset + i * PAGE_SIZE for i in range(count)]
        pages: dict[int, SessionPage] = {}
        in_flight = anyio.Semaphore(concurrency)  # FIFO: pages are asked for in order

        async def get(
            at: int, into: dict[int, SessionPage] = pages, slots: anyio.Semaphore = in_flight
        ) -> None:
            async with slots:
                into[at] = await fetch(filters, at)

        async with anyio.create_task_group() as group:
            for at in offsets:
                group.start_soon(get, at)
        for at in offsets:
            page = pages[at]
            total = max(total, page.meta.total_count)
            yield page
        offset = offsets[-1] + PAGE_SIZE


async def iter_pages(
    fetch: FetchPage, filters: Mapping[str, Any], *, concurrency: int, now: datetime
) -> AsyncIterator[Session]:
    """Every session matching ``filters``, each once, newest first within each window."""
    recent: OrderedDict[str, None] = OrderedDict()
    remember = 4 * concurrency * PAGE_SIZE  # duplicates come from shifts of about a batch
    for window in split_windows(filters, now):
        async for page in _window(fetch, window, concurrency):
            for session in page.objects:
                if session.session_uuid in recent:
                    continue
                recent[session.session_uuid] = None
                if len(recent) > remember:
                    recent.popitem(last=False)
                yield session
