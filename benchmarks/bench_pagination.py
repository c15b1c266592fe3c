"""Parallel pagination: how close listing comes to what its latency allows, and its CPU bound.

1. **100 ms answers** — the emulator answers every request after 100 ms, as a distant API does.
   ``iter_sessions`` must read the first page alone (it gives the total), then the rest
   ``concurrency`` at a time, so the best it can do over ``pages`` pages is
   ``pages / (1 + (pages - 1) / concurrency)`` times one page's time. The baseline is one page
   read alone (the median of a few), in the same run; each figure is the speed-up over reading
   the pages one by one at that pace, as a ratio of that ideal.
2. **CPU-bound** — 5 ms answers, where one process's CPU (the client's and, on two cores, the
   emulator's) is what limits: sequential listing against 8 and 16 pages at a time.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_client import MEASURE, Pairs, client_rate

from masking_async import MaskingClient
from masking_async.client._pagination import PAGE_SIZE

LATENCY = 0.1  # seconds the emulator waits before each answer, in part 1
CONCURRENCY = (8, 16, 32)


async def list_all(url: str, concurrency: int) -> tuple[float, int]:
    """Seconds to list every session ``concurrency`` pages at a time, and how many came."""
    async with MaskingClient(**AUTH, base_url=url, options=MEASURE) as client:
        started = time.perf_counter()
        count = 0
        async for _ in client.iter_sessions(concurrency=concurrency):
            count += 1
        return time.perf_counter() - started, count


async def one_page(url: str, reads: int = 5) -> float:
    """Median seconds of reading the first page alone (the client open, as in ``list_all``)."""
    async with MaskingClient(**AUTH, base_url=url, options=MEASURE) as client:
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            await client.list_sessions()
            times.append(time.perf_counter() - started)
        return statistics.median(times)


def ideal(pages: int, concurrency: int) -> float:
    """The most a first page read alone allows: ``pages / (1 + (pages - 1) / concurrency)``."""
    return pages / (1 + (pages - 1) / concurrency)


def with_latency(total: int) -> list[dict[str, Any]]:
    pages = -(-total // PAGE_SIZE)
    rows = []
    with emulator_process("--rate-limit", "off", "--latency", f"{LATENCY * 1000:g}ms") as url:
        anyio.run(client_rate, url, Pairs().take(total), 64)
        page = anyio.run(one_page, url)
        rows.append(row("pagination", f"{LATENCY * 1000:g} ms answers: one page alone", page, "s"))
        for concurrency in CONCURRENCY:
            seconds, seen = anyio.run(list_all, url, concurrency)
            assert seen == total, seen
            speedup = pages * page / seconds
            best = ideal(pages, concurrency)
            name = f"{LATENCY * 1000:g} ms answers, {concurrency} at a time"
            rows += [
                row("pagination", f"{name}: {pages} pages", seconds, "s"),
                row("pagination", f"{name}: speed-up", speedup, "x"),
                row("pagination", f"{name}: ideal speed-up", best, "x"),
                row("pagination", f"{name}: speed-up / ideal", speedup / best, "x"),
            ]
    return rows


def cpu_bound(total: int) -> list[dict[str, Any]]:
    pages = -(-total // PAGE_SIZE)
    rows = []
    with emulator_process("--rate-limit", "off", "--latency", "5ms") as url:
        anyio.run(client_rate, url, Pairs().take(total), 64)
        sequential, seen = anyio.run(list_all, url, 1)
        assert seen == total, seen
        rows.append(row("pagination", f"5 ms answers: sequential, {pages} pages", sequential, "s"))
        for concurrency in CONCURRENCY[:2]:
            parallel, seen = anyio.run(list_all, url, concurrency)
            assert seen == total, seen
            speedup = sequential / parallel
            name = f"5 ms answers, {concurrency} at a time"
            rows += [
                row("pagination", f"{name}: {pages} pages", parallel, "s"),
                row("pagination", f"{name}: speed-up", speedup, "x"),
                row(
                    "pagination",
                    f"{name}: speed-up / ideal",
                    speedup / ideal(pages, concurrency),
                    "x",
                ),
            ]
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return with_latency(400 if quick else 2000) + cpu_bound(400 if quick else 10_000)


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
