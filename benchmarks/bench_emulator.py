"""Emulator benchmark: creates per second, list pages at any depth, memory under retention.

``python benchmarks/bench_emulator.py [--quick]``. The store is driven directly (no HTTP, no
argument checks) to show what the state costs; a short HTTP run shows the whole server in this
process.

- Create scale: the cost of a create with 1,000 and with 1,000,000 sessions in one account
  (quick: 50,000); a ratio near 1 means no per-create scan of sessions.
- Page cost: a ``status=active`` page at offset 0 and at a deep offset (90% of the matches),
  with 1,000 and 1,000,000 sessions (half expired); goal: deep / offset 0 <= 2 at each size,
  and little growth with size. Also a party's active page when it has 50,000 past sessions.
- Memory under retention: 5,000,000 creates (quick: 80,000), one every 0.1 s of a manual
  clock, 10-minute sessions, 1-hour retention; the sessions kept and the resident memory at each
  quarter of the run should stay flat once the first hour has passed.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    ManualClock,
    Store,
)

try:
    from _support import Stopwatch, row
except ModuleNotFoundError:  # run as a module from elsewhere
    from benchmarks._support import Stopwatch, row

NAME = "emulator"
#: Distinct parties inside the US +1 415 range; checking each with phonenumbers would take
#: longer than the benchmark itself, and the store trusts its (already checked) input.
_US_FIRST = 2_000_000


def _parties(start: int) -> Iterator[dict[str, Any]]:
    counter = _US_FIRST + 2 * start
    while True:
        yield {"first_party": f"+1415{counter:07d}", "second_party": f"+1415{counter + 1:07d}"}
        counter += 2


def _store(retention: float | None = None) -> Store:
    config = EmulatorConfig() if retention is None else EmulatorConfig(retention=retention)
    return Store(ManualClock(), config.accounts, config.pool, seed=1, retention=config.retention)


def _fill(store: Store, params: Iterator[dict[str, Any]], count: int) -> float:
    """Create ``count`` sessions; return the seconds it took."""
    create = store.create
    started = time.perf_counter()
    for _ in range(count):
        create(DEFAULT_AUTH_ID, next(params))
    return time.perf_counter() - started


def _create_cost(store: Store, params: Iterator[dict[str, Any]], batches: int = 7) -> float:
    """Median microseconds per create over a few batches of 2,000 (noise-resistant)."""
    per_batch = 2000
    times = [_fill(store, params, per_batch) / per_batch * 1e6 for _ in range(batches)]
    return statistics.median(times)


def _rss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _scale_rows(quick: bool) -> list[dict[str, Any]]:
    big_count = 50_000 if quick else 1_000_000
    small = _store()
    params = _parties(0)
    _fill(small, params, 1000)
    small_cost = _create_cost(small, params)
    del small
    gc.collect()

    big = _store()
    params = _parties(0)
    rss_before = _rss_bytes()
    fill_seconds = _fill(big, params, big_count)
    per_session = (_rss_bytes() - rss_before) / big_count
    big_cost = _create_cost(big, params)
    label = f"{big_count:,}"
    return [
        row(NAME, "store creates/s (filling)", round(big_count / fill_seconds), "creates/s"),
        row(NAME, "create cost, 1,000 active", round(small_cost, 2), "us"),
        row(NAME, f"create cost, {label} active", round(big_cost, 2), "us"),
        row(NAME, f"create cost ratio {label} / 1,000", round(big_cost / small_cost, 2), "x"),
        row(NAME, "memory per session (peak RSS growth)", round(per_session), "bytes"),
    ]


def _page_cost(store: Store, filters: dict[str, Any], repeat: int = 200) -> float:
    """Median microseconds of one list page over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        store.list(DEFAULT_AUTH_ID, filters)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def _half_expired(count: int) -> Store:
    """``count`` sessions, every other one 60 s long; after two minutes half have expired."""
    store = _store()
    create = store.create
    params = _parties(0)
    for n in range(count):
        create(DEFAULT_AUTH_ID, {**next(params), "session_expiry": 60 if n % 2 else 86400})
    store.clock.advance(120)
    store.list(DEFAULT_AUTH_ID, {"limit": 1})  # let the sweep expire them before timing
    return store


def _page_rows(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for count in (1000, 50_000 if quick else 1_000_000):
        store = _half_expired(count)
        active = store.list(DEFAULT_AUTH_ID, {"status": "active", "limit": 1}).total_count
        deep = int(active * 0.9)
        shallow_cost = _page_cost(store, {"status": "active"})
        deep_cost = _page_cost(store, {"status": "active", "offset": deep})
        label = f"{count:,} sessions"
        rows += [
            row(NAME, f"status=active page, offset 0, {label}", round(shallow_cost, 1), "us"),
            row(NAME, f"status=active page, offset {deep:,}, {label}", round(deep_cost, 1), "us"),
            row(
                NAME, f"deep / offset 0 page cost, {label}", round(deep_cost / shallow_cost, 2), "x"
            ),
        ]
        del store
        gc.collect()
    store = _store()
    first, second = "+14155550100", "+14155550101"
    past = 10_000 if quick else 50_000
    for _ in range(past):
        made = store.create(DEFAULT_AUTH_ID, {"first_party": first, "second_party": second})
        store.expire(DEFAULT_AUTH_ID, made.uuid)
    store.create(DEFAULT_AUTH_ID, {"first_party": first, "second_party": second})
    cost = _page_cost(store, {"first_party": first, "status": "active"})
    rows.append(row(NAME, f"party's active page, {past:,} past sessions", round(cost, 1), "us"))
    return rows


def _current_rss() -> int:
    """Resident memory now (Linux ``/proc``; elsewhere the peak, which can only grow)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        return _rss_bytes()


def _retention_rows(quick: bool) -> list[dict[str, Any]]:
    total = 80_000 if quick else 5_000_000
    store = _store(retention=3600.0)
    state = store.account(DEFAULT_AUTH_ID)
    assert state is not None
    params = _parties(0)
    create, advance = store.create, store.clock.advance  # type: ignore[attr-defined]
    rows = []
    gc.collect()
    for quarter in range(1, 5):
        for _ in range(total // 4):
            create(DEFAULT_AUTH_ID, {**next(params), "session_expiry": 600})
            advance(0.1)
        gc.collect()
        done = total // 4 * quarter
        rows += [
            row(NAME, f"sessions kept after {done:,} creates (1 h retention)", len(state.sessions)),
            row(
                NAME,
                f"RSS after {done:,} creates (1 h retention)",
                round(_current_rss() / 2**20),
                "MiB",
            ),
        ]
    return rows


async def _http_creates(count: int, concurrency: int = 32) -> float:
    """Creates per second through HTTP to an emulator in this process."""
    params = _parties(3_000_000)  # clear of the store runs, still 7 local digits
    headers = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN)}
    async with Emulator(EmulatorConfig(rate_limit=None), clock=ManualClock()) as emulator:
        url = f"{emulator.base_url}/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/"
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

            async def worker(share: int) -> None:
                for _ in range(share):
                    async with session.post(url, json=next(params)) as response:
                        assert response.status == 201, await response.text()
                        await response.read()

            with Stopwatch() as watch:
                await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    return (count // concurrency * concurrency) / watch.seconds


def run(quick: bool) -> list[dict[str, Any]]:
    """The rows for ``run_all.py``: store throughput, scale ratio, memory, page costs, memory
    under retention, HTTP throughput."""
    rows = _scale_rows(quick)
    gc.collect()
    rows += _page_rows(quick)
    gc.collect()
    rows += _retention_rows(quick)
    http = asyncio.run(_http_creates(640 if quick else 3200))
    rows.append(row(NAME, "HTTP creates/s (in-process, 32 in flight)", round(http), "creates/s"))
    return rows


if __name__ == "__main__":
    started = time.perf_counter()
    for line in run(quick="--quick" in sys.argv):
        print(f"{line['metric']:<45} {line['value']:>12,} {line['unit']}")
    print(f"({time.perf_counter() - started:.1f} s)")
