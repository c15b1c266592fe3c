"""Parallel pagination: every session exactly once, even while the list grows."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from masking_async import MaskingClient
from masking_async.client._pagination import split_windows
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, Emulator
from masking_async.phones import party_pairs
from masking_async.rules import check_create


def _fill(emulator: Emulator, count: int, *, start: int = 0) -> set[str]:
    made = set()
    for first, second in party_pairs(count, countries=("US", "GB", "IN"), start=start):
        params, _ = check_create({"first_party": first, "second_party": second})
        made.add(emulator.store.create(DEFAULT_AUTH_ID, params).uuid)
    return made


async def test_parallel_listing_returns_each_session_once(masking_emulator: Emulator) -> None:
    """1,050 sessions listed 8 pages at a time come back complete, each once, newest first."""
    made = _fill(masking_emulator, 1050)
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=masking_emulator.base_url
    ) as client:
        seen = [s.session_uuid async for s in client.iter_sessions(concurrency=8)]
    assert len(seen) == len(set(seen)) == 1050
    assert set(seen) == made


async def test_listing_copes_with_sessions_added_meanwhile(masking_emulator: Emulator) -> None:
    """Sessions created mid-listing shift pages; nothing is lost and nothing is yielded twice."""
    made = _fill(masking_emulator, 300)
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=masking_emulator.base_url
    ) as client:
        seen: list[str] = []
        async for session in client.iter_sessions(concurrency=2):
            seen.append(session.session_uuid)
            if len(seen) == 50:
                _fill(masking_emulator, 30, start=10_000)
    assert len(seen) == len(set(seen))
    assert made <= set(seen)


def test_long_ranges_are_split_into_30_day_windows() -> None:
    """A 70-day created_time range becomes three contiguous windows, newest first."""
    lower = datetime(2024, 1, 1, tzinfo=timezone.utc)
    upper = lower + timedelta(days=70)
    windows = split_windows(
        {"created_time__gte": lower, "created_time__lt": upper, "status": "all"}, upper
    )
    assert len(windows) == 3
    assert windows[0]["created_time__lt"] == upper
    assert windows[-1]["created_time__gte"] == lower
    for newer, older in itertools.pairwise(windows):
        assert older["created_time__lt"] == newer["created_time__gte"]
        assert all(w["status"] == "all" for w in (newer, older))
    assert split_windows({"status": "active"}, upper) == [{"status": "active"}]
