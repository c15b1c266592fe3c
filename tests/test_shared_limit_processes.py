"""Several ``masking-async create`` processes sharing one limit through a real Redis.

The emulator enforces the account's limit and logs each request's arrival on its own clock, so
"never over the limit" is judged where it matters: at the server, summed over the processes.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from masking_async.client._limiter_state import most_in_window
from masking_async.client._redis_server import RedisServer
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    Faults,
    ServerRateLimit,
    SystemClock,
)
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.phones import party_pairs

pytestmark = pytest.mark.slow


def _rows(path: Path, count: int, start: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_party", "second_party"])
        writer.writerows(party_pairs(count, start=start))
    return path


async def _fleet(
    tmp_path: Path,
    emulator: Emulator,
    redis_url: str,
    *,
    processes: int,
    rows: int,
    rate: str,
    concurrency: int,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> list[int]:
    """Run ``processes`` create commands at once; return their exit statuses."""
    env = {
        **os.environ,
        "PLIVO_AUTH_ID": DEFAULT_AUTH_ID,
        "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "MASKING_ASYNC_BASE_URL": emulator.base_url,
    }
    statuses: list[int] = []

    async def one(index: int) -> None:
        source = _rows(tmp_path / f"rows{index}.csv", rows, start=index * rows)
        command = [sys.executable, "-m", "masking_async", "create", str(source)]
        command += ["--out", str(tmp_path / f"out{index}.jsonl"), "--no-progress"]
        command += ["--rate", rate, "--concurrency", str(concurrency)]
        command += ["--shared-limit", redis_url]
        done = await anyio.run_process(command, env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        statuses.append(done.returncode)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for index in range(processes):
                group.start_soon(one, index)
            if meanwhile is not None:
                await meanwhile()
    return statuses


def _creates(emulator: Emulator) -> tuple[list[float], list[float]]:
    """Arrival times of the accepted creates and of the 429 answers, in order."""
    entries = [e for e in emulator.request_log if e.method == "POST"]
    accepted = sorted(e.at for e in entries if e.status == 201)
    refused = sorted(e.at for e in entries if e.status == 429)
    return accepted, refused


async def test_four_processes_share_one_limit_at_the_server(
    tmp_path: Path, masking_emulator_factory: EmulatorFactory
) -> None:
    """4 processes x concurrency 32: no 429, no window over the limit, >= 0.97 of it together."""
    limit = ServerRateLimit(50, 5.0)  # the account's 300 per 5 s, scaled down in count
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=limit), clock=SystemClock())
    # A fresh Redis holds everyone for one window: the processes boot meanwhile, as a fleet
    # started together would, and begin on time.
    with RedisServer() as server:
        await _fleet(
            tmp_path, emulator, server.url, processes=4, rows=30, rate="50/5s", concurrency=32
        )
    accepted, refused = _creates(emulator)
    spans = sorted(b - a for a, b in zip(accepted, accepted[limit.requests :], strict=False))
    assert refused == [], (refused, spans[:5])  # the shortest spans of N + 1 arrivals
    assert len(accepted) == 120
    assert most_in_window(accepted, limit.per) <= limit.requests
    achieved = (len(accepted) - 1) / (accepted[-1] - accepted[0])
    assert achieved >= 0.97 * limit.requests / limit.per, achieved


async def test_a_429_in_one_process_pauses_them_all(
    tmp_path: Path, redis_server: RedisServer, masking_emulator_factory: EmulatorFactory
) -> None:
    """Each 429 (Retry-After 1 s) holds every process: nothing arrives until the pause ends."""
    faults = Faults(throttle_rate=0.04, operations=frozenset({"create"}), seed=7)
    emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, faults=faults), clock=SystemClock()
    )
    url = redis_server.url.replace("/0", "/1")  # a database of its own: its own account state
    await _fleet(tmp_path, emulator, url, processes=4, rows=10, rate="40/1s", concurrency=8)
    accepted, refused = _creates(emulator)
    assert len(accepted) == 40  # every row made it: the 429s were waited out and resent
    assert refused
    for throttled in refused:
        # Requests granted before the pause was shared may still land just after the 429.
        during = [t for t in accepted if throttled + 0.3 < t < throttled + 0.95]
        assert during == [], (throttled, during)


async def test_redis_restarted_during_a_run(
    tmp_path: Path, masking_emulator_factory: EmulatorFactory
) -> None:
    """Redis down for a second mid-run: nothing is sent meanwhile, the limit holds, all finish."""
    limit = ServerRateLimit(20, 1.0)
    emulator = await masking_emulator_factory(EmulatorConfig(rate_limit=limit), clock=SystemClock())
    marks: dict[str, float] = {}
    with RedisServer() as server:

        async def outage() -> None:
            while len(emulator.request_log) < 20:  # noqa: ASYNC110 - bounded by fail_after
                await anyio.sleep(0.05)
            await anyio.to_thread.run_sync(server.stop)
            marks["stopped"] = emulator.clock.monotonic()
            await anyio.sleep(1.0)
            await anyio.to_thread.run_sync(server.start)
            marks["restarted"] = emulator.clock.monotonic()

        await _fleet(
            tmp_path,
            emulator,
            server.url,
            processes=2,
            rows=40,
            rate="20/1s",
            concurrency=16,
            meanwhile=outage,
        )
    accepted, refused = _creates(emulator)
    assert len(accepted) == 80
    assert refused == []
    assert most_in_window(accepted, limit.per) <= limit.requests
    held = [t for t in accepted if marks["stopped"] + 0.3 < t < marks["restarted"]]
    assert held == []
