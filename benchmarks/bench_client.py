"""Client throughput: MaskingClient against a bare aiohttp loop and the official plivo SDK.

All three create sessions on the same emulator process (no rate limit, no latency), in one run,
so the ratios compare like with like. The client runs with every feature on (``FULL``: party
validation, session models, an event hook, adoption lanes and lookups, the limiter at the
highest limit it takes); its CPU per create is compared with the bare loop's over interleaved
pairs (A B, B A, ...), the median ratio reported. Throughput against concurrency feeds the plot.
"""

from __future__ import annotations

import base64
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import anyio
from _support import AUTH, emulator_process, row

from masking_async import ClientOptions, Event, MaskingClient, RateLimit, RetryPolicy
from masking_async.phones import party_pairs
from masking_async.rates import MAX_LIMIT_REQUESTS

#: CPU seconds per request of the last ``_pool`` runs (this process only: the emulator is apart).
CPU: list[float] = []
MEASURE = ClientOptions(rate_limit=RateLimit.off(), retry=RetryPolicy.none(), max_connections=64)
#: Every feature on: a limit to keep (never reached), retries with lookups of lost creates.
FULL = ClientOptions(rate_limit=RateLimit(MAX_LIMIT_REQUESTS, 1.0), max_connections=64)


class Pairs:
    """Distinct pairs across every run on one emulator, so no party is ever busy twice."""

    def __init__(self) -> None:
        self._stream: Iterator[tuple[str, str]] = party_pairs(10**6, countries=("US", "IN"))

    def take(self, count: int) -> list[tuple[str, str]]:
        return [next(self._stream) for _ in range(count)]


async def _pool(jobs: list[Any], concurrency: int, work: Callable[[Any], Awaitable[None]]) -> float:
    """Seconds for ``concurrency`` workers to run ``work`` over every job (CPU time in ``cpu``)."""
    send, receive = anyio.create_memory_object_stream[Any](len(jobs))
    for job in jobs:
        send.send_nowait(job)
    send.close()

    async def worker(stream: Any) -> None:
        async with stream:
            async for job in stream:
                await work(job)

    started, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as group:
        with receive:
            for _ in range(concurrency):
                group.start_soon(worker, receive.clone())
    CPU.append((time.process_time() - cpu) / len(jobs))
    return time.perf_counter() - started


async def client_rate(
    url: str,
    pairs: list[tuple[str, str]],
    concurrency: int,
    options: ClientOptions = MEASURE,
) -> float:
    """Creates per second through ``MaskingClient`` (with ``FULL``, an event hook too)."""
    seen: Counter[str] = Counter()

    def count(event: Event) -> None:
        """What a metrics hook does: count each kind of event."""
        seen[type(event).__name__] += 1

    hooks = [count] if options is FULL else []
    async with MaskingClient(**AUTH, base_url=url, options=options, hooks=hooks) as client:

        async def create(pair: tuple[str, str]) -> None:
            await client.create_session({"first_party": pair[0], "second_party": pair[1]})

        return len(pairs) / await _pool(pairs, concurrency, create)


async def bare_rate(url: str, pairs: list[tuple[str, str]], concurrency: int) -> float:
    """The same requests with nothing but aiohttp: the floor of what any client can cost."""
    token = base64.b64encode(f"{AUTH['auth_id']}:{AUTH['auth_token']}".encode()).decode()
    endpoint = f"{url}/v1/Account/{AUTH['auth_id']}/Masking/Session/"
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64), headers={"Authorization": f"Basic {token}"}
    ) as session:

        async def create(pair: tuple[str, str]) -> None:
            body = {"first_party": pair[0], "second_party": pair[1]}
            async with session.post(endpoint, json=body) as answer:
                await answer.json()

        return len(pairs) / await _pool(pairs, concurrency, create)


def sdk_client(url: str) -> Any:
    """The official SDK pointed at the emulator (it has no base-URL option)."""
    import plivo
    import plivo.rest.client as rest

    for name in (
        "PLIVO_API_BASE_URI",
        "API_VOICE_BASE_URI",
        "API_VOICE_BASE_URI_FALLBACK_1",
        "API_VOICE_BASE_URI_FALLBACK_2",
    ):
        setattr(rest, name, f"{url}/v1/Account")
    return plivo.RestClient(AUTH["auth_id"], AUTH["auth_token"])


def sdk_rate(url: str, pairs: list[tuple[str, str]], threads: int) -> float:
    """The SDK sequentially (threads=1) or from a thread pool, one SDK client per thread."""
    local = threading.local()

    def create(pair: tuple[str, str]) -> None:
        if not hasattr(local, "client"):
            local.client = sdk_client(url)
        local.client.masking_sessions.create_masking_session(
            first_party=pair[0], second_party=pair[1]
        )

    started = time.perf_counter()
    if threads == 1:
        for pair in pairs:
            create(pair)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(create, pairs))
    return len(pairs) / (time.perf_counter() - started)


def client_and_bare(url: str, pairs: Pairs, count: int, rounds: int) -> dict[str, list[float]]:
    """Creates/s and CPU per create of each side, ``rounds`` pairs, the order swapped each time."""
    sides = {
        "client": lambda chunk: anyio.run(client_rate, url, chunk, 32, FULL),
        "bare": lambda chunk: anyio.run(bare_rate, url, chunk, 32),
    }
    figures: dict[str, list[float]] = {"client": [], "bare": [], "client_cpu": [], "bare_cpu": []}
    for turn in range(rounds):
        for name in ("client", "bare") if turn % 2 == 0 else ("bare", "client"):
            figures[name].append(sides[name](pairs.take(count)))
            figures[f"{name}_cpu"].append(CPU[-1])
    return figures


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 300 if quick else 1000
    rows = []
    with emulator_process("--rate-limit", "off") as url:
        pairs = Pairs()
        anyio.run(client_rate, url, pairs.take(200), 32, FULL)  # warm both sides up
        anyio.run(bare_rate, url, pairs.take(200), 32)
        figures = client_and_bare(url, pairs, count, 2 if quick else 8)
        client, bare = (statistics.median(figures[name]) for name in ("client", "bare"))
        client_cpu, bare_cpu = (statistics.median(figures[f"{n}_cpu"]) for n in ("client", "bare"))
        ratios = [c / b for c, b in zip(figures["client_cpu"], figures["bare_cpu"], strict=True)]
        sequential = sdk_rate(url, pairs.take(count // 4), 1)
        pooled = sdk_rate(url, pairs.take(count // 2), 16)
        rows += [
            row("client", "MaskingClient creates/s (32 in flight, every feature)", client, "req/s"),
            row("client", "bare aiohttp creates/s (32 in flight)", bare, "req/s"),
            row("client", "client / bare aiohttp", client / bare, "x"),
            row("client", "client CPU per create", client_cpu * 1e6, "us"),
            row("client", "bare aiohttp CPU per create", bare_cpu * 1e6, "us"),
            row(
                "client",
                f"client CPU / bare aiohttp CPU (median of {len(ratios)} pairs)",
                statistics.median(ratios),
                "x",
                note="each pair: " + ", ".join(f"{r:.3f}" for r in ratios),
            ),
            row("client", "plivo SDK sequential creates/s", sequential, "req/s"),
            row("client", "client / SDK sequential", client / sequential, "x"),
            row("client", "plivo SDK 16 threads creates/s", pooled, "req/s"),
            row("client", "client / SDK 16 threads", client / pooled, "x"),
        ]
        for concurrency in (1, 2, 4, 8, 16, 32, 64):
            rate = anyio.run(client_rate, url, pairs.take(count // 4), concurrency)
            rows.append(
                row(
                    "client",
                    f"creates/s at concurrency {concurrency}",
                    rate,
                    "req/s",
                    series="throughput",
                    x=concurrency,
                )
            )
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
