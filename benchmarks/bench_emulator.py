"""Emulator benchmark: creates per second, and whether a create slows down as sessions pile up.

``python benchmarks/bench_emulator.py [--quick]``. The store is driven directly (no HTTP, no
argument checks) to show what the state costs; a short HTTP run shows the whole server in this
process. The scale figure compares the cost of a create with 1,000 and with 1,000,000 active
sessions in one account (quick: 200,000); a ratio near 1 means no per-create scan of sessions.
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


def _store() -> Store:
    config = EmulatorConfig()
    return Store(ManualClock(), config.accounts, config.pool, seed=1)


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
    big_count = 200_000 if quick else 1_000_000
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
    """The rows for ``run_all.py``: store throughput, scale ratio, memory, HTTP throughput."""
    rows = _scale_rows(quick)
    http = asyncio.run(_http_creates(640 if quick else 3200))
    rows.append(row(NAME, "HTTP creates/s (in-process, 32 in flight)", round(http), "creates/s"))
    return rows


if __name__ == "__main__":
    started = time.perf_counter()
    for line in run(quick="--quick" in sys.argv):
        print(f"{line['metric']:<45} {line['value']:>12,} {line['unit']}")
    print(f"({time.perf_counter() - started:.1f} s)")
