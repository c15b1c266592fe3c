"""The batch engine: memory against input size, rows per second, and what the journal costs.

Memory is the peak RSS of a child process checking a whole file (``--dry-run``: the same streaming
read and validation a real run does), for 100,000 and 1,000,000 rows. The rows repeat one pair,
which keeps the run short; memory is what is measured, not validation speed.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_client import MEASURE, Pairs

from masking_async import MaskingClient
from masking_async.batch import BatchOptions, run_batch


def _repeated_csv(path: Path, count: int) -> None:
    with path.open("w") as handle:
        handle.write("ref,first_party,second_party,record\n")
        handle.writelines(f"R{i},+14155552345,+12165554567,true\n" for i in range(count))


def peak_rss_mb(path: Path) -> float:
    """Peak resident memory of ``masking-async create FILE --dry-run`` in its own process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "masking_async", "create", str(path), "--dry-run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, process.returncode
    return usage.ru_maxrss / 1024  # kilobytes on Linux


async def rows_per_second(
    url: str, pairs: list[tuple[str, str]], folder: Path, journal: bool
) -> float:
    source = folder / f"pairs-{journal}.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_party", "second_party"])
        writer.writerows(pairs)
    options = BatchOptions(
        op="create",
        concurrency=32,
        progress=False,
        out=folder / f"r-{journal}.jsonl",
        journal=folder / "run.journal" if journal else None,
    )
    async with MaskingClient(**AUTH, base_url=url, options=MEASURE) as client:
        started = time.perf_counter()
        summary = await run_batch(source, client=client, options=options, report=lambda _: None)
        elapsed = time.perf_counter() - started
    assert summary.outcomes["ok"] == len(pairs), summary.format()
    return len(pairs) / elapsed


def run(quick: bool = False) -> list[dict[str, Any]]:
    small, large = (10_000, 100_000) if quick else (100_000, 1_000_000)
    count = 1000 if quick else 3000
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        memory = {}
        for size in (small, large):
            _repeated_csv(folder / f"{size}.csv", size)
            memory[size] = peak_rss_mb(folder / f"{size}.csv")
            rows.append(row("batch", f"peak memory, {size:,} rows", memory[size], "MB"))
        rows.append(
            row("batch", f"memory {large:,} / {small:,} rows", memory[large] / memory[small], "x")
        )
        with emulator_process("--rate-limit", "off") as url:
            pairs = Pairs()
            anyio.run(rows_per_second, url, pairs.take(300), folder, False)  # warm up
            plain = anyio.run(rows_per_second, url, pairs.take(count), folder, False)
            journalled = anyio.run(rows_per_second, url, pairs.take(count), folder, True)
        rows += [
            row("batch", "rows/s, no rate limit, no journal", plain, "rows/s"),
            row("batch", "rows/s, with journal", journalled, "rows/s"),
            row("batch", "journal cost (with / without)", journalled / plain, "x"),
        ]
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
