"""``masking-async sync`` at the account's documented rate: does applying keep to the limit?

An emulator limited to 300 requests per 5 s (60/s) holds 9,000 active sessions (made on an
unlimited emulator, which saves its state for the limited one to load with ``--state``). The
desired file has 10,000 pairs: 500 of the active pairs are left out (expired with ``--prune``),
500 want ``record: true`` (updates), 8,000 are unchanged and 1,500 are new (creates), so 2,500
requests are needed. (The issue's "1,000 to create" cannot hold with 10,000 desired, 9,000
active and 500 expired; the creates are what the arithmetic leaves.) The real command runs in a
child process; its own lines give the listing's seconds and the apply's. Then ``sync --dry-run
--detailed-exit-code`` must exit 0, and the server must hold exactly the file's pairs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_rate import LIMIT, PER

from masking_async import ClientOptions, MaskingClient, RateLimit
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.phones import party_pairs

NAME = "sync"
_LISTED = re.compile(r"listed ([\d,]+) active sessions? in ([\d.]+) s")
_APPLIED = re.compile(r"over ([\d.]+) s")


async def _seed(pairs: list[tuple[str, str]], state: Path) -> None:
    """Make a session per pair on an unlimited emulator, which saves its state to ``state``."""
    with emulator_process("--rate-limit", "off", "--state", str(state)) as url:
        options = ClientOptions(rate_limit=RateLimit(None), max_connections=32)
        async with MaskingClient(**AUTH, base_url=url, options=options) as client:
            limiter = anyio.CapacityLimiter(32)

            async def one(a: str, b: str) -> None:
                async with limiter:
                    await client.create_session({"first_party": a, "second_party": b})

            async with anyio.create_task_group() as group:
                for a, b in pairs:
                    group.start_soon(one, a, b)


def _cli(url: str, folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PLIVO_AUTH_ID": DEFAULT_AUTH_ID,
        "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "MASKING_ASYNC_BASE_URL": url,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "masking_async", "sync", *args, "--rate", f"{LIMIT}/{PER:g}s"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    return done, time.perf_counter() - started


def _sync(
    url: str, folder: Path, desired: list[tuple[str, str]], updated: int
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str], float, float]:
    """Apply the desired file, then plan it again; both commands and their wall seconds."""
    lines = ["first_party,second_party,record"]
    lines += [f"{a},{b},{'true' if i < updated else ''}" for i, (a, b) in enumerate(desired)]
    (folder / "desired.csv").write_text("\n".join(lines) + "\n")
    done, wall = _cli(url, folder, "desired.csv", "--prune", "--yes", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    again, again_wall = _cli(
        url, folder, "desired.csv", "--prune", "--dry-run", "--detailed-exit-code"
    )
    return done, again, wall, again_wall


def run(quick: bool) -> list[dict[str, Any]]:
    scale = 20 if quick else 1
    desired_count, active_count, pruned, updated = (n // scale for n in (10_000, 9_000, 500, 500))
    pairs = list(party_pairs(desired_count + pruned, countries=("US", "GB", "IN"), start=20_000))
    active, desired = pairs[:active_count], pairs[pruned:]
    requests = pruned + updated + (len(desired) - (active_count - pruned))
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as scratch:
        folder = Path(scratch)
        state = folder / "emulator-state.json"
        anyio.run(_seed, active, state)
        with emulator_process("--rate-limit", f"{LIMIT}/{PER:g}s", "--state", str(state)) as url:
            done, again, wall, again_wall = _sync(url, folder, desired, updated)
    listed, applied = _LISTED.search(done.stderr), _APPLIED.search(done.stderr)
    assert listed is not None, done.stderr
    assert applied is not None, done.stderr
    final = _LISTED.search(again.stderr)
    listing, apply = float(listed.group(2)), float(applied.group(1))
    floor = requests / (LIMIT / PER)  # the least the account's limit allows
    after = int(final.group(1).replace(",", "")) if final else -1
    return [
        row(NAME, "desired pairs", len(desired)),
        row(NAME, "active sessions before", active_count),
        row(NAME, "requests needed (create + update + expire)", requests),
        row(NAME, "listing the active sessions", listing, "s"),
        row(NAME, "applying the plan", apply, "s"),
        row(NAME, "applying / (requests / 60 per s)", apply / floor, "x", note="at most 1.1"),
        row(NAME, "whole command (start-up, listing, plan, apply)", wall, "s"),
        row(NAME, "second dry run --detailed-exit-code", again.returncode, "exit"),
        row(NAME, "second dry run", again_wall, "s"),
        row(NAME, "active sessions after", after),
    ]


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
