"""``masking-async demo``: the main job end to end, against an emulator started in this process.

It generates realistic pairs of parties, creates a session for each through the batch engine at
the real API's limit (300 requests per 5 s, enforced by the emulator too), lists them with
parallel pagination, updates some, expires them all, and prints what each step did.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
import attrs

from masking_async.cli._common import rate_limit, run_until_signalled

STEPS = 4


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job against an embedded emulator (no account, no network)",
        description=__doc__,
    )
    parser.add_argument("--sessions", type=int, default=2000, help="pairs to create (2000)")
    parser.add_argument("--rate", default="300/5s", help="the account limit to run at (300/5s)")
    parser.add_argument("--update-share", type=float, default=0.1, help="share to update (0.1)")
    parser.add_argument("--workdir", type=Path, help="where files go (default: a temp folder)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=handle)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _write_pairs(path: Path, count: int) -> None:
    from masking_async.phones import party_pairs

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "first_party", "second_party", "record", "session_expiry"])
        for index, (first, second) in enumerate(
            party_pairs(count, countries=("US", "GB", "IN")), 1
        ):
            record = "true" if index % 3 == 0 else "false"
            writer.writerow([f"order-{index:06d}", first, second, record, 7200])


def _write_updates(results: Path, path: Path, share: float) -> int:
    """Every n-th created session gets a longer expiry and recording turned on."""
    step = max(1, round(1 / share)) if share > 0 else 0
    count = 0
    with results.open() as source, path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "session_uuid", "session_expiry", "record"])
        for index, line in enumerate(source):
            row = json.loads(line)
            if step and index % step == 0 and row["outcome"] == "ok":
                writer.writerow([row["ref"], row["session_uuid"], 10800, "true"])
                count += 1
    return count


def handle(args: argparse.Namespace) -> int:
    from masking_async.batch import BatchOptions, expire_matching, run_batch
    from masking_async.client import ClientOptions, MaskingClient
    from masking_async.emulator import (
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        Emulator,
        EmulatorConfig,
        RateLimit,
    )

    limit = rate_limit(args.rate)
    server_limit = None if limit.requests is None else RateLimit(limit.requests, limit.per)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="masking-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pairs, updates = workdir / "pairs.csv", workdir / "updates.csv"

    async def main(stop: anyio.Event) -> int:
        started = time.monotonic()
        async with Emulator(EmulatorConfig(rate_limit=server_limit)) as emulator:
            _say(f"emulator on {emulator.base_url}, limit {args.rate}; files in {workdir}")
            async with MaskingClient(
                DEFAULT_AUTH_ID,
                DEFAULT_AUTH_TOKEN,
                base_url=emulator.base_url,
                options=ClientOptions(rate_limit=limit, max_connections=args.concurrency),
            ) as client:
                options = BatchOptions(concurrency=args.concurrency, progress=not args.no_progress)
                _write_pairs(pairs, args.sessions)
                _say(f"\n[1/{STEPS}] create {args.sessions} sessions from {pairs.name}")
                created = await run_batch(
                    pairs,
                    client=client,
                    options=attrs.evolve(
                        options,
                        op="create",
                        out=workdir / "created.jsonl",
                        journal=workdir / "created.journal",
                    ),
                    stop=stop,
                )
                _say(created.format())
                if created.interrupted:
                    return created.exit_status

                _say(f"\n[2/{STEPS}] list the active sessions, 8 pages at a time")
                listed_at = time.monotonic()
                active = [s async for s in client.iter_sessions({"status": "active"})]
                _say(f"{len(active)} active sessions in {time.monotonic() - listed_at:.1f} s")

                count = _write_updates(workdir / "created.jsonl", updates, args.update_share)
                _say(f"\n[3/{STEPS}] update {count} sessions (longer expiry, recording on)")
                updated = await run_batch(
                    updates,
                    client=client,
                    options=attrs.evolve(options, op="update", out=workdir / "updated.jsonl"),
                    stop=stop,
                )
                _say(updated.format())

                _say(f"\n[4/{STEPS}] expire every active session (list, then expire)")
                expired = await expire_matching(
                    {"status": "active"},
                    client=client,
                    options=attrs.evolve(options, out=workdir / "expired.jsonl"),
                    stop=stop,
                )
                _say(expired.format())
            throttled = sum(1 for entry in emulator.request_log if entry.status == 429)
            requests = len(emulator.request_log)
        elapsed = time.monotonic() - started
        _say(
            f"\ndone: {requests} requests in {elapsed:.0f} s ({requests / elapsed:.1f}/s against"
            f" a limit of {args.rate}), {throttled} answered 429"
        )
        worst = max(created.exit_status, updated.exit_status, expired.exit_status)
        return worst

    return run_until_signalled(main)
