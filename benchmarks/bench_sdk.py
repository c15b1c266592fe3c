"""The batch engine against the official SDK, creating the same sessions with 20 ms of latency.

With a real network every request waits; the SDK sequential waits for each in turn, a thread pool
overlaps some, and the engine keeps ``concurrency`` requests in flight on one thread.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_client import MEASURE, Pairs, sdk_rate

from masking_async import MaskingClient
from masking_async.batch import BatchOptions, run_batch


async def engine_rate(url: str, pairs: list[tuple[str, str]], folder: Path) -> float:
    source = folder / "pairs.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_party", "second_party"])
        writer.writerows(pairs)
    options = BatchOptions(op="create", concurrency=32, progress=False, out=folder / "r.jsonl")
    async with MaskingClient(**AUTH, base_url=url, options=MEASURE) as client:
        started = time.perf_counter()
        summary = await run_batch(source, client=client, options=options, report=lambda _: None)
        elapsed = time.perf_counter() - started
    assert summary.outcomes["ok"] == len(pairs), summary.format()
    return len(pairs) / elapsed


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 100 if quick else 400
    with (
        emulator_process("--rate-limit", "off", "--latency", "20ms") as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        pairs = Pairs()
        engine = anyio.run(engine_rate, url, pairs.take(count), Path(folder))
        sequential = sdk_rate(url, pairs.take(count // 2), 1)
        pooled = sdk_rate(url, pairs.take(count), 16)
    return [
        row("sdk", "batch engine rows/s (20 ms latency, 32 workers)", engine, "rows/s"),
        row("sdk", "plivo SDK sequential rows/s", sequential, "rows/s"),
        row("sdk", "engine / SDK sequential", engine / sequential, "x"),
        row("sdk", "plivo SDK 16 threads rows/s", pooled, "rows/s"),
        row("sdk", "engine / SDK 16 threads", engine / pooled, "x"),
    ]


if __name__ == "__main__":
    from run_all import format_table

    os.chdir(Path(__file__).parent)
    print(format_table(run(quick="--quick" in sys.argv)))
