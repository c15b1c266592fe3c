"""Parallel against sequential pagination over thousands of sessions, with emulator latency."""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_client import MEASURE, Pairs, client_rate

from masking_async import MaskingClient


async def list_all(url: str, concurrency: int) -> tuple[float, int]:
    async with MaskingClient(**AUTH, base_url=url, options=MEASURE) as client:
        started = time.perf_counter()
        count = 0
        async for _ in client.iter_sessions(concurrency=concurrency):
            count += 1
        return time.perf_counter() - started, count


def run(quick: bool = False) -> list[dict[str, Any]]:
    total = 2000 if quick else 10_000
    rows = []
    with emulator_process("--rate-limit", "off", "--latency", "5ms") as url:
        anyio.run(client_rate, url, Pairs().take(total), 64)
        sequential, seen = anyio.run(list_all, url, 1)
        assert seen == total, seen
        rows.append(row("pagination", f"sequential, {total} sessions", sequential, "s"))
        for concurrency in (8, 16):
            parallel, seen = anyio.run(list_all, url, concurrency)
            assert seen == total, seen
            rows += [
                row("pagination", f"{concurrency} pages at a time", parallel, "s"),
                row("pagination", f"speed-up at {concurrency}", sequential / parallel, "x"),
            ]
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
