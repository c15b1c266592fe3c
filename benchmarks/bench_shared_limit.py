"""The shared limit (Redis): what an acquisition costs, and how a fleet shares one limit.

1. **overhead** — one ``acquire()`` when nothing makes it wait (a limit far above the demand),
   in-process ``AccountLimiter`` against ``RedisLimiter`` on a loopback Redis: microseconds per
   acquisition, one caller at a time and 32 at once.
2. **one account** — 1, 2, 4 and 8 processes, 32 callers each, sharing one limit of 500 per 2 s
   through Redis. Each process only acquires (no HTTP): what is measured is the limit, not the
   server. The aggregate rate over the last part of the run is divided by the limit; it should
   stay flat, at ``per / (per + margin)`` (the shared margin is 0.1 s: 0.952 of 500 per 2 s).
   The most grants any 2 s window held is the ceiling's check.
3. **several accounts** — 1, 2, 4 and 8 processes, each with its own account and a limit far
   above what one process can do: the aggregate grows with the accounts until the cores are
   used (Redis and the processes share them).
4. **one process, many accounts** — one process holding 1, 8 and 32 accounts' limiters: how far
   one process goes (acquisitions per second in all).

Processes start together: each says when it has booted, and the parent then gives them all one
start time (on a loaded 2-core machine, four processes take seconds to import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import redis
from _support import row

from masking_async.client import AccountLimiter, Limiter, RateLimit, RedisLimiter
from masking_async.client._limiter_state import most_in_window
from masking_async.client._redis_server import RedisServer
from masking_async.rates import MAX_LIMIT_REQUESTS

SHARED = RateLimit(500, 2.0)
#: The same rate in a shorter window, for a quick run.
SHARED_QUICK = RateLimit(125, 0.5)
#: The highest limit a client takes, far above what a process can do: only the CPU limits it.
UNLIMITED = RateLimit(MAX_LIMIT_REQUESTS, 1.0)
CALLERS = 32
START = 0.5  # seconds from the last process ready to the common start


async def _acquire_for(limiter: Limiter, until: float, callers: int) -> list[float]:
    """``callers`` tasks acquiring until ``until`` (wall clock); the grant times."""
    times: list[float] = []

    async def caller() -> None:
        while time.time() < until:
            await limiter.acquire()
            times.append(time.time())

    async with anyio.create_task_group() as group:
        for _ in range(callers):
            group.start_soon(caller)
    return times


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One process of the fleet: wait for the start, acquire with ``CALLERS`` tasks, report."""
    limit = RateLimit(spec["requests"], spec["per"])
    limiters = [
        RedisLimiter.from_url(spec["url"], account=account, limit=limit)
        for account in spec["accounts"]
    ]
    times: list[float] = []
    cpu = 0.0
    try:
        for limiter in limiters:
            await limiter.connect()
        print("ready", flush=True)
        start = float(await anyio.to_thread.run_sync(sys.stdin.readline))
        spec["until"] = start + spec["seconds"]
        await anyio.sleep(max(0.0, start - time.time()))
        cpu = time.process_time()
        async with anyio.create_task_group() as group:
            for limiter in limiters:

                async def one(limiter: Limiter = limiter) -> None:
                    times.extend(await _acquire_for(limiter, spec["until"], CALLERS))

                group.start_soon(one)
    finally:
        for limiter in limiters:
            await limiter.aclose()
    return {"times": times, "cpu": time.process_time() - cpu}


def _fleet(
    url: str, accounts: list[list[str]], limit: RateLimit, seconds: float
) -> tuple[list[float], float]:
    """One process per entry of ``accounts``: every grant time, sorted, and their CPU seconds."""
    processes = []
    for names in accounts:
        assert limit.requests is not None
        spec = {"url": url, "accounts": names, "requests": limit.requests, "per": limit.per}
        spec["seconds"] = seconds
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a benchmark process did not start")
    start = time.time() + START
    times: list[float] = []
    cpu = 0.0
    for process in processes:
        out, _ = process.communicate(f"{start}\n", timeout=seconds + 120)
        report = json.loads(out)
        times.extend(report["times"])
        cpu += report["cpu"]
    return sorted(times), cpu


def _rate_after(times: list[float], skip: float) -> float:
    """Grants per second after the first ``skip`` seconds (the start is not the steady state)."""
    if not times:
        return 0.0
    kept = [t for t in times if t >= times[0] + skip]
    return (len(kept) - 1) / (kept[-1] - kept[0]) if len(kept) > 1 else 0.0


def _redis_cpu(server: RedisServer) -> float:
    """CPU seconds the Redis server has used so far (user + system)."""
    with redis.Redis(port=server.port) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "es" if noun.endswith("s") else "s")


def _accounts(count: int) -> list[str]:
    return [f"BENCH{uuid.uuid4().hex[:12]}" for _ in range(count)]


async def _per_acquire(
    make: Callable[[], Limiter], count: int, callers: int
) -> tuple[float, float]:
    """Microseconds per acquisition, elapsed and CPU of this process: ``count`` by ``callers``."""
    limiter = make()
    connect: Callable[[], Awaitable[None]] | None = getattr(limiter, "connect", None)
    if connect is not None:
        await connect()
    done = 0

    async def caller() -> None:
        nonlocal done
        while done < count:
            done += 1
            await limiter.acquire()

    started, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as group:
        for _ in range(callers):
            group.start_soon(caller)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await limiter.aclose()
    return elapsed / count * 1e6, cpu / count * 1e6


def run(quick: bool = False) -> list[dict[str, Any]]:
    seconds = 1.0 if quick else 6.0
    counts = (2,) if quick else (1, 2, 4, 8)  # quick: each suite's rows, in the test's minute
    one_limit = SHARED_QUICK if quick else SHARED
    rows: list[dict[str, Any]] = []
    with RedisServer() as server:
        time.sleep(one_limit.per + 0.2)  # past the cold-start hold of a fresh Redis
        for callers in (1, CALLERS):
            local = anyio.run(_per_acquire, lambda: AccountLimiter(UNLIMITED), 2000, callers)
            shared = anyio.run(
                _per_acquire,
                lambda: RedisLimiter.from_url(server.url, account=_accounts(1)[0], limit=UNLIMITED),
                2000,
                callers,
            )
            what = f"acquire, {_plural(callers, 'caller')}"
            for index, kind in enumerate(("elapsed", "CPU")):
                rows.append(row("shared_limit", f"{what}: in-process, {kind}", local[index], "us"))
                rows.append(row("shared_limit", f"{what}: Redis, {kind}", shared[index], "us"))
            rows.append(
                row(
                    "shared_limit",
                    f"{what}: Redis / in-process, elapsed",
                    shared[0] / local[0],
                    "x",
                )
            )

        assert one_limit.requests is not None
        allowed = one_limit.requests / one_limit.per
        for count in counts:
            account = _accounts(1)
            times, _ = _fleet(server.url, [account] * count, one_limit, seconds)
            rate = _rate_after(times, one_limit.per)
            name = f"one account, {_plural(count, 'process')}"
            rows.append(row("shared_limit", f"{name}: achieved / limit", rate / allowed, "x"))
            rows.append(
                row(
                    "shared_limit",
                    f"{name}: most in a window / limit",
                    most_in_window(times, one_limit.per) / one_limit.requests,
                    "x",
                )
            )
        layouts = [
            (f"{_plural(n, 'account')}, a process each", [_accounts(1) for _ in range(n)])
            for n in counts
        ]
        layouts += [
            (f"one process, {_plural(n, 'account')}", [_accounts(n)])
            for n in (1, 8, 32)[: len(counts) - 1]
        ]
        for name, accounts in layouts:
            redis_cpu = _redis_cpu(server)
            times, cpu = _fleet(server.url, accounts, UNLIMITED, seconds)
            redis_cpu = _redis_cpu(server) - redis_cpu
            rows.append(
                row(
                    "shared_limit",
                    f"{name}: acquisitions",
                    _rate_after(times, min(1.0, seconds / 2)),
                    "/s",
                )
            )
            rows.append(row("shared_limit", f"{name}: cores used by them", cpu / seconds, ""))
            rows.append(
                row(
                    "shared_limit",
                    f"{name}: cores used by Redis",
                    redis_cpu / seconds,
                    "",
                    note="boot included",
                )
            )
    rows.append(row("shared_limit", "cores", float(os.cpu_count() or 1), ""))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(anyio.run(_worker, json.loads(sys.argv[2]))))
    else:
        from run_all import format_table

        print(format_table(run(quick="--quick" in sys.argv)))
