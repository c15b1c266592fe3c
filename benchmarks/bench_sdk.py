"""The batch engine against the official SDK, creating the same sessions with 20 ms of latency.

With a real network every request waits; the SDK sequential waits for each in turn, a thread pool
overlaps some, and the engine keeps ``concurrency`` requests in flight on one thread.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from _support import emulator_process, row
from bench_batch import FAST_WORKERS, engine_run
from bench_client import MEASURE, Pairs, sdk_rate


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 100 if quick else 400
    with (
        emulator_process("--rate-limit", "off", "--latency", "20ms") as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        pairs = Pairs()
        chunk = pairs.take(count)
        engine, *_ = anyio.run(
            lambda: engine_run(
                url, chunk, Path(folder), journal=False, options=MEASURE, workers=FAST_WORKERS
            )
        )
        sequential = sdk_rate(url, pairs.take(count // 2), 1)
        pooled = sdk_rate(url, pairs.take(count), 16)
    return [
        row(
            "sdk", f"batch engine rows/s (20 ms latency, {FAST_WORKERS} workers)", engine, "rows/s"
        ),
        row("sdk", "plivo SDK sequential rows/s", sequential, "rows/s"),
        row("sdk", "engine / SDK sequential", engine / sequential, "x"),
        row("sdk", "plivo SDK 16 threads rows/s", pooled, "rows/s"),
        row("sdk", "engine / SDK 16 threads", engine / pooled, "x"),
    ]


if __name__ == "__main__":
    from run_all import format_table

    os.chdir(Path(__file__).parent)
    print(format_table(run(quick="--quick" in sys.argv)))
