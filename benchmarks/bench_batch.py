"""The batch engine: memory against input size, and what the durable journal costs.

1. **memory** — peak RSS of a child process checking a whole file (``--dry-run``: the same
   streaming read and validation a real run does), for 100,000 and 1,000,000 rows. The rows repeat
   one pair, which keeps the run short; memory is what is measured, not validation speed.
2. **journal at the documented rate** — the same number of creates through ``run_batch`` with
   ``journal=`` (a durable SQLite file) and without (the engine then keeps a temporary journal
   with ``synchronous=OFF``), client and emulator both at 300 per 5 s. Runs alternate A B B A ...
   so drift on a noisy machine falls on both sides; each pair gives one ratio, and the median
   ratio and its spread are reported. The emulator is reset before each run (no sessions, no
   rate-limit history: what waiting out the window would give, without the wait).
3. **journal with no rate limit** — the same method, with a bare ``MaskingClient`` loop (same
   workers, no engine) as a third side, to show what the engine itself costs.
4. **registration** — the pre-scan of a large file into a fresh durable journal: seconds beside
   the same scan without a journal (a dry run), seconds to scan it again into the same journal (a
   resume), and the journal's size on disk per row.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from _support import AUTH, emulator_process, row
from bench_client import MEASURE, Pairs, client_rate
from bench_rate import LIMIT, PER

from masking_async import (
    ClientOptions,
    Event,
    MaskingClient,
    RateLimit,
    RequestAnswered,
    RequestSent,
)
from masking_async.batch import BatchOptions, run_batch
from masking_async.batch.intake import scan as scan_rows  # pass one, timed on its own
from masking_async.batch.journal import Journal
from masking_async.batch.summary import Summary

#: Workers of the unlimited runs (as bench_client) and of the limited ones (the CLI's default).
FAST_WORKERS, PACED_WORKERS = 32, 16
#: The client at the documented limit, with its default retries.
PACED = ClientOptions(rate_limit=RateLimit(LIMIT, PER), max_connections=64)


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


async def _reset(url: str) -> None:
    """Forget every session and the rate-limit history (control requests meet no limit)."""
    async with aiohttp.ClientSession() as http, http.post(f"{url}/emulator/reset") as answer:
        assert answer.status < 300, answer.status


def _prepare(folder: Path, pairs: list[tuple[str, str]]) -> tuple[Path, Path]:
    """The input file of one run, and where its journal goes (none left from the last run)."""
    source = folder / "pairs.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_party", "second_party"])
        writer.writerows(pairs)
    for stale in folder.glob("run.journal*"):
        stale.unlink()
    return source, folder / "run.journal"


async def engine_run(
    url: str,
    pairs: list[tuple[str, str]],
    folder: Path,
    *,
    journal: bool,
    options: ClientOptions,
    workers: int,
) -> tuple[float, float, int, float]:
    """One ``run_batch`` of creates: rows/s, CPU seconds per row (this process), 429s, sends/s.

    Rows/s is over the whole call (pre-scan and the last answer included); sends/s is the rate
    requests left at, first to last, which is what the limiter holds and a journal could slow.
    """
    await _reset(url)
    source, path = _prepare(folder, pairs)
    batch = BatchOptions(
        op="create",
        concurrency=workers,
        progress=False,
        out=folder / "results.jsonl",
        journal=path if journal else None,
    )
    events: list[Event] = []
    async with MaskingClient(**AUTH, base_url=url, options=options, hooks=[events.append]) as c:
        started, cpu = time.perf_counter(), time.process_time()
        summary = await run_batch(source, client=c, options=batch, report=lambda _: None)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert summary.outcomes["ok"] == len(pairs), summary.format()
    refused = sum(isinstance(e, RequestAnswered) and e.status == 429 for e in events)
    sent = [e.at for e in events if isinstance(e, RequestSent)]
    return len(pairs) / elapsed, cpu / len(pairs), refused, (len(sent) - 1) / (sent[-1] - sent[0])


Side = Callable[[list[tuple[str, str]]], tuple[float, float, int, float]]


def interleaved(sides: dict[str, Side], pairs: Pairs, count: int, rounds: int) -> dict[str, Any]:
    """Each side once per round, the order reversed every other round (A B, B A, ...)."""
    names = list(sides)
    figures: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in names}
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            figures[name].append(sides[name](pairs.take(count)))
    return figures


def _ratios(figures: dict[str, Any], top: str, bottom: str) -> list[float]:
    return [a[0] / b[0] for a, b in zip(figures[top], figures[bottom], strict=True)]


def _journal_rows(label: str, figures: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Median rows/s and CPU per row of each side, and the median with / without ratio."""
    rows = []
    for name, runs in figures.items():
        rows += [
            row(
                "batch", f"{label}: rows/s, {name}", statistics.median(r[0] for r in runs), "rows/s"
            ),
            row(
                "batch",
                f"{label}: CPU per row, {name}",
                statistics.median(r[1] for r in runs) * 1e6,
                "us",
            ),
        ]
    ratios = _ratios(figures, "durable journal", "no journal")
    rounds = len(ratios)
    rows += [
        row(
            "batch",
            f"{label}: journal cost, with / without (median of {rounds} pairs of {count} rows)",
            statistics.median(ratios),
            "x",
            note="each pair: " + ", ".join(f"{r:.3f}" for r in ratios),
        ),
        row(
            "batch",
            f"{label}: journal CPU per row, with / without (median of pairs)",
            statistics.median(
                a[1] / b[1]
                for a, b in zip(figures["durable journal"], figures["no journal"], strict=True)
            ),
            "x",
        ),
        row("batch", f"{label}: lowest ratio", min(ratios), "x"),
        row("batch", f"{label}: highest ratio", max(ratios), "x"),
    ]
    return rows


def at_documented_rate(pairs: Pairs, folder: Path, count: int, rounds: int) -> list[dict[str, Any]]:
    """Journal or not, client and server both at 300 per 5 s."""
    with emulator_process("--rate-limit", f"{LIMIT}/{PER:g}s") as url:

        def side(journal: bool) -> Side:
            return lambda chunk: anyio.run(
                lambda: engine_run(
                    url, chunk, folder, journal=journal, options=PACED, workers=PACED_WORKERS
                )
            )

        figures = interleaved(
            {"no journal": side(False), "durable journal": side(True)}, pairs, count, rounds
        )
    label = f"at {LIMIT}/{PER:g}s"
    sending = [
        a[3] / b[3] for a, b in zip(figures["durable journal"], figures["no journal"], strict=True)
    ]
    return [
        *_journal_rows(label, figures, count),
        *(
            row(
                "batch",
                f"{label}: requests sent/s, {name}",
                statistics.median(r[3] for r in runs),
                "req/s",
            )
            for name, runs in figures.items()
        ),
        row(
            "batch",
            f"{label}: sending rate, with / without journal (median of pairs)",
            statistics.median(sending),
            "x",
            note="each pair: " + ", ".join(f"{r:.4f}" for r in sending),
        ),
        *(
            row("batch", f"{label}: 429 answers, {name} (all runs)", sum(r[2] for r in runs), "")
            for name, runs in figures.items()
        ),
    ]


def unlimited(pairs: Pairs, folder: Path, count: int, rounds: int) -> list[dict[str, Any]]:
    """Journal or not, and the bare client, with no rate limit anywhere."""
    with emulator_process("--rate-limit", "off") as url:

        def side(journal: bool) -> Side:
            return lambda chunk: anyio.run(
                lambda: engine_run(
                    url, chunk, folder, journal=journal, options=MEASURE, workers=FAST_WORKERS
                )
            )

        def bare(chunk: list[tuple[str, str]]) -> tuple[float, float, int, float]:
            anyio.run(_reset, url)
            cpu = time.process_time()
            rate = anyio.run(client_rate, url, chunk, FAST_WORKERS)
            return rate, (time.process_time() - cpu) / len(chunk), 0, rate

        side(False)(pairs.take(100 if count < 1000 else 300))  # warm both processes up
        figures = interleaved(
            {"no journal": side(False), "durable journal": side(True), "bare client": bare},
            pairs,
            count,
            rounds,
        )
    label = "no rate limit"
    engine = _ratios(figures, "no journal", "bare client")
    return [
        *_journal_rows(label, {k: v for k, v in figures.items() if k != "bare client"}, count),
        row(
            "batch",
            f"{label}: rows/s, bare client loop ({FAST_WORKERS} in flight, no engine)",
            statistics.median(r[0] for r in figures["bare client"]),
            "rows/s",
        ),
        row(
            "batch",
            f"{label}: engine without journal / bare client",
            statistics.median(engine),
            "x",
        ),
    ]


def registration(folder: Path, size: int) -> list[dict[str, Any]]:
    """Pass one over ``size`` rows: without a journal, into a fresh one, again into the same."""
    source = folder / f"register-{size}.csv"
    _repeated_csv(source, size)
    path = folder / "register.journal"

    def scan(journal: Journal | None) -> float:
        started = time.perf_counter()
        options = BatchOptions(op="create")
        scanned = scan_rows(source, "csv", options, journal, Summary(), lambda _: None)
        assert not scanned.changed
        return time.perf_counter() - started

    dry = scan(None)
    journal = Journal.open(path)
    fresh = scan(journal)
    journal.close()
    size_on_disk = sum(p.stat().st_size for p in folder.glob("register.journal*"))
    journal = Journal.open(path)
    again = scan(journal)
    journal.close()
    journal = Journal.open(path)
    assert sum(1 for _ in journal.entries()) == size
    journal.close()
    return [
        row("batch", f"pre-scan of {size:,} rows, no journal (dry run)", dry, "s"),
        row("batch", f"pre-scan of {size:,} rows into a fresh durable journal", fresh, "s"),
        row(
            "batch",
            "registration cost per row (fresh journal - dry run)",
            (fresh - dry) / size * 1e6,
            "us",
        ),
        row("batch", f"pre-scan of {size:,} rows into the same journal (resume)", again, "s"),
        row("batch", "journal size on disk per row", size_on_disk / size, "bytes"),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    small, large = (5_000, 20_000) if quick else (100_000, 1_000_000)
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
        pairs = Pairs()
        # The client paces evenly from the first row (300 per 5.025 s): 600 rows take 10 s.
        rows += at_documented_rate(pairs, folder, 60 if quick else 600, 1 if quick else 5)
        # Short runs, many pairs: on a shared machine the drift is slow, the ratio of a pair holds.
        rows += unlimited(pairs, folder, 200 if quick else 1000, 1 if quick else 10)
        rows += registration(folder, small)
    return rows


if __name__ == "__main__":
    from run_all import format_table

    results = run(quick="--quick" in sys.argv)
    print(format_table(results))
    for entry in results:
        if "note" in entry:
            print(f"{entry['metric']}: {entry['note']}")
