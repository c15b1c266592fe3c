"""Rate control: the exact ceiling at the documented limit, learning a lower one, and the SDK.

1. **ceiling** — the documented 300 per 5 s, enforced by the emulator and given to the client
   (unscaled: the jitter margin is absolute, so a shorter window would cost a larger share).
   Achieved / allowed is the sending rate after the first window, from the client's hooks (send
   times); the 429s are the answers the hooks saw.
2. **learning** — the server allows 100 per 1 s, the client is told 200 per 1 s (the real limit
   is half what the user believes). The limiter's rate is sampled every 0.1 s; it settles when it
   first lies within [0.85, 1] of the real limit with nothing paused (time from the first send).
   The sending rate over time is the plot in docs/benchmarks.md.
3. **sdk** — the same limited server, 500 creates: the official SDK from 16 threads (it has no
   limiter: every 429 is a failed row) beside the batch engine with 16 workers.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_client import Pairs, sdk_client

from masking_async import (
    ClientOptions,
    Event,
    MaskingClient,
    RateLimit,
    RequestAnswered,
    RequestSent,
)
from masking_async.batch import BatchOptions, run_batch
from masking_async.client._limiter_state import most_in_window

LIMIT, PER = 300, 5.0
REAL, ASKED = 100, 200  # per second: what the server allows, what the client is told
SAMPLE = 0.1  # seconds between samples of the learned rate
BIN = 0.5  # seconds per point of the sending-rate plot


async def _creates(client: MaskingClient, pairs: Iterator[tuple[str, str]], until: float) -> None:
    """16 workers creating sessions until the pairs run out or ``until`` (monotonic) passes."""

    async def worker() -> None:
        for first, second in pairs:
            if time.monotonic() >= until:
                return
            await client.create_session({"first_party": first, "second_party": second})

    async with anyio.create_task_group() as group:
        for _ in range(16):
            group.start_soon(worker)


async def ceiling(
    url: str, pairs: list[tuple[str, str]], limit: int, per: float
) -> list[dict[str, Any]]:
    events: list[Event] = []
    options = ClientOptions(rate_limit=RateLimit(limit, per))
    async with MaskingClient(**AUTH, base_url=url, options=options, hooks=[events.append]) as c:
        await _creates(c, iter(pairs), float("inf"))
    sent = [e.at for e in events if isinstance(e, RequestSent)]
    refused = sum(isinstance(e, RequestAnswered) and e.status == 429 for e in events)
    # Steady state: the sends after the first window, over the time they took.
    steady = [t for t in sent if t >= sent[0] + per]
    achieved = len(steady) / (sent[-1] - sent[0] - per)
    allowed = limit / per
    name = f"{limit}/{per:g}s"
    return [
        row("rate", f"achieved req/s at the documented limit ({name})", achieved, "req/s"),
        row("rate", "achieved / allowed at the documented limit", achieved / allowed, "x"),
        row("rate", f"most sends in any {per:g} s window", most_in_window(sent, per), ""),
        row("rate", "429 answers at the documented limit", refused, ""),
    ]


async def learning(url: str, pairs: Pairs, seconds: float) -> list[dict[str, Any]]:
    events: list[Event] = []
    samples: list[tuple[float, float, str]] = []
    options = ClientOptions(rate_limit=RateLimit(ASKED, 1.0))
    async with MaskingClient(**AUTH, base_url=url, options=options, hooks=[events.append]) as c:
        start = time.monotonic()

        async def sample() -> None:
            while True:
                stats = c.rate_stats
                samples.append((time.monotonic() - start, stats.rate, stats.mode))
                await anyio.sleep(SAMPLE)

        async with anyio.create_task_group() as group:
            group.start_soon(sample)
            await _creates(c, iter(pairs.take(int(seconds * ASKED))), start + seconds)
            group.cancel_scope.cancel()
        learned = c.rate_stats.rate
    # Time counts from the first send, not from opening the client.
    first = next(e.at for e in events if isinstance(e, RequestSent)) - start
    samples = [(t - first, rate, mode) for t, rate, mode in samples if t >= first]
    start += first
    seconds -= first
    answers = [e for e in events if isinstance(e, RequestAnswered)]
    refused = sum(e.status == 429 for e in answers)
    settle = next(
        (t for t, rate, mode in samples if mode != "paused" and 0.85 * REAL <= rate <= REAL),
        float("nan"),
    )
    accepted = [e.at - start for e in answers if e.status == 201 and e.at - start >= settle]
    after = len(accepted) / (seconds - settle)
    settled = [rate for t, rate, _ in samples if t >= settle]  # none if it never settled
    mean_learned = sum(settled) / len(settled) if settled else float("nan")
    rows = [
        row(
            "rate", f"server allows {REAL}/s, client told {ASKED}/s: learned rate", learned, "req/s"
        ),
        row("rate", "learned rate / real limit (at the end)", learned / REAL, "x"),
        row("rate", "mean learned rate / real limit (after settling)", mean_learned / REAL, "x"),
        row("rate", "accepted req/s / real limit (after settling)", after / REAL, "x"),
        row("rate", "429 share of requests while learning", refused / len(answers), "x"),
        row("rate", "time to settle", settle, "s"),
    ]
    sent = [e.at - start for e in events if isinstance(e, RequestSent)]
    bins = int(seconds / BIN)
    for i in range(bins):
        count = sum(i * BIN <= t < (i + 1) * BIN for t in sent)
        rows.append(
            row("rate", "sent", count / BIN, "req/s", series="rate:sent", x=i * BIN, plot_only=True)
        )
    rows += [
        row("rate", "learned", rate, "req/s", series="rate:learned", x=t, plot_only=True)
        for t, rate, _ in samples[:: max(1, int(BIN / SAMPLE) // 2)]
    ]
    return rows


def sdk_failures(url: str, pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """The SDK from 16 threads (one client per thread): (rows failed, of which 429)."""
    local = threading.local()
    failures: list[str] = []

    def create(pair: tuple[str, str]) -> None:
        if not hasattr(local, "client"):
            local.client = sdk_client(url)
        try:
            local.client.masking_sessions.create_masking_session(
                first_party=pair[0], second_party=pair[1]
            )
        except Exception as exc:  # the SDK's errors share no base we could name more precisely
            failures.append(str(exc))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, pairs))
    return len(failures), sum("429" in message for message in failures)


async def engine_failures(url: str, pairs: list[tuple[str, str]], folder: Path) -> tuple[int, int]:
    """The batch engine, 16 workers, told the limit the user believes: (rows failed, 429s)."""
    source = folder / "pairs.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_party", "second_party"])
        writer.writerows(pairs)
    options = BatchOptions(op="create", concurrency=16, progress=False, out=folder / "r.jsonl")
    events: list[Event] = []
    client_options = ClientOptions(rate_limit=RateLimit(ASKED, 1.0), max_connections=16)
    async with MaskingClient(
        **AUTH, base_url=url, options=client_options, hooks=[events.append]
    ) as client:
        summary = await run_batch(source, client=client, options=options, report=lambda _: None)
    refused = sum(isinstance(e, RequestAnswered) and e.status == 429 for e in events)
    return summary.outcomes["failed"], refused


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    pairs = Pairs()
    # A quick run scales the window down to a second: a smoke test, not the figure.
    limit, per = (LIMIT // 5, 1.0) if quick else (LIMIT, PER)
    with emulator_process("--rate-limit", f"{limit}/{per:g}s") as url:
        rows += anyio.run(ceiling, url, pairs.take(int(limit * (1.4 if quick else 3))), limit, per)
    with emulator_process("--rate-limit", f"{REAL}/1s") as url:
        rows += anyio.run(learning, url, pairs, 3.0 if quick else 40.0)
    count = 100 if quick else 500
    with emulator_process("--rate-limit", f"{REAL}/1s") as url:
        failed, refused = sdk_failures(url, pairs.take(count))
    with emulator_process("--rate-limit", f"{REAL}/1s") as url, tempfile.TemporaryDirectory() as d:
        engine_failed, engine_refused = anyio.run(engine_failures, url, pairs.take(count), Path(d))
    rows += [
        row("rate", f"plivo SDK 16 threads, {count} creates at {REAL}/s: rows failed", failed, ""),
        row("rate", "plivo SDK 16 threads: 429 answers", refused, ""),
        row(
            "rate", f"batch engine 16 workers, same {count} creates: rows failed", engine_failed, ""
        ),
        row("rate", "batch engine 16 workers: 429 answers", engine_refused, ""),
    ]
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
