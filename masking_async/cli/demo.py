"""``masking-async demo``: the main job end to end, against an emulator started in this process."""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import attrs

from masking_async import spec
from masking_async.cli._common import connections, positive_int, rate_limit, run_until_signalled
from masking_async.cli._errors import EXIT_INTERRUPTED
from masking_async.cli._output import plural

if TYPE_CHECKING:
    from masking_async.batch import BatchOptions
    from masking_async.batch.summary import Summary
    from masking_async.client import MaskingClient, RateLimit

STEPS = 4
_DESCRIPTION = (
    "Run the main job against an emulator started in this process (no account, no network):"
    " generate realistic pairs of parties, create a session for each through the batch engine at"
    f" the real API's limit ({spec.DOCUMENTED_RATE.requests} requests per"
    f" {spec.DOCUMENTED_RATE.per:g} s, enforced by the emulator too), list them with"
    " parallel pagination, update some, expire them all, and print what each step did."
)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job against an embedded emulator (no account, no network)",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "--sessions", type=positive_int, default=2000, metavar="N", help="pairs to create"
    )
    parser.add_argument(
        "--rate",
        type=rate_limit,
        default=spec.DOCUMENTED_RATE.text,
        metavar="N/WINDOW",
        help="the account limit the emulator enforces and the client keeps to, or off",
    )
    parser.add_argument(
        "--update-share", type=_share, default=0.1, metavar="SHARE", help="share to update, 0-1"
    )
    parser.add_argument(
        "--workdir", type=Path, metavar="FOLDER", help="where files go (default: a temp folder)"
    )
    parser.add_argument(
        "--concurrency", type=connections, default=32, metavar="N", help="requests in flight"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress lines on stderr"
    )
    parser.set_defaults(handler=handle)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


#: The summary's advice on finishing a run; the demo's emulator ends with it, so none applies.
_RESUME_ADVICE = ("run again with the same --journal", "there was no --journal")
_DEMO_STOPPED = "the demo was stopped; its emulator is gone with it: run masking-async demo again"


def _say_summary(summary: Summary) -> None:
    """A step's summary, with the demo's own advice in place of how to resume a run."""
    lines = [line for line in summary.format().splitlines() if not line.startswith(_RESUME_ADVICE)]
    if summary.interrupted or summary.halted:
        lines.append(_DEMO_STOPPED)
    _say("\n".join(lines))


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
    """Run the demo until it ends or is stopped; Ctrl-C twice cancels it at once."""
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="masking-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    status = run_until_signalled(functools.partial(_run, args, workdir))
    return EXIT_INTERRUPTED if status is None else status


def _limit_text(limit: RateLimit) -> str:
    """The limit as the demo prints it: the same words open and close the run."""
    return "off" if limit.requests is None else f"{limit.requests}/{limit.per:g}s"


async def _run(args: argparse.Namespace, workdir: Path, stop: anyio.Event) -> int:
    """Start an emulator and a client on it, run the steps, then say what they cost.

    The emulator enforces the same limit the client keeps to, so the run shows the real
    API's pace; after an interrupted create the totals are left out, as nothing else ran.
    """
    from masking_async.client import ClientOptions, MaskingClient
    from masking_async.emulator import (
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        Emulator,
        EmulatorConfig,
        ServerRateLimit,
    )

    limit = args.rate
    server_limit = None if limit.requests is None else ServerRateLimit(limit.requests, limit.per)
    started = time.monotonic()
    async with Emulator(EmulatorConfig(rate_limit=server_limit)) as emulator:
        _say(f"emulator on {emulator.base_url}, limit {_limit_text(limit)}; files in {workdir}")
        async with MaskingClient(
            DEFAULT_AUTH_ID,
            DEFAULT_AUTH_TOKEN,
            base_url=emulator.base_url,
            options=ClientOptions(rate_limit=limit, max_connections=args.concurrency),
        ) as client:
            summaries = await _steps(client, args, workdir, stop)
        throttled = sum(1 for entry in emulator.request_log if entry.status == 429)
        requests = len(emulator.request_log)
    if summaries[0].interrupted:
        return summaries[0].exit_status
    elapsed = time.monotonic() - started
    _say(
        f"\ndone: {requests} requests in {elapsed:.0f} s ({requests / elapsed:.1f}/s against"
        f" a limit of {_limit_text(limit)}), {throttled} answered 429"
    )
    return max(summary.exit_status for summary in summaries)


async def _steps(
    client: MaskingClient, args: argparse.Namespace, workdir: Path, stop: anyio.Event
) -> list[Summary]:
    """The four steps in order, each step's summary said as it ends.

    An interrupted create ends the demo there (its summary alone is returned): the later steps
    would only act on a partial set.
    """
    from masking_async.batch import BatchOptions

    options = BatchOptions(concurrency=args.concurrency, progress=not args.no_progress)
    created = await _create(client, options, workdir, args.sessions, stop)
    if created.interrupted:
        return [created]
    await _list_active(client)
    updated = await _update(client, options, workdir, args.update_share, stop)
    expired = await _expire(client, options, workdir, stop)
    return [created, updated, expired]


async def _create(
    client: MaskingClient, options: BatchOptions, workdir: Path, count: int, stop: anyio.Event
) -> Summary:
    """Step 1: generate the pairs and create a session for each, journalled like a real run."""
    from masking_async.batch import run_batch

    pairs = workdir / "pairs.csv"
    _write_pairs(pairs, count)
    _say(f"\n[1/{STEPS}] create {plural(count, 'session')} from {pairs.name}")
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
    _say_summary(created)
    return created


async def _list_active(client: MaskingClient) -> None:
    """Step 2: list the active sessions, to show parallel pagination's pace."""
    _say(f"\n[2/{STEPS}] list the active sessions, 8 pages at a time")
    listed_at = time.monotonic()
    active = [s async for s in client.iter_sessions({"status": "active"})]
    took = time.monotonic() - listed_at
    _say(f"{plural(len(active), 'active session')} in {took:.1f} s")


async def _update(
    client: MaskingClient, options: BatchOptions, workdir: Path, share: float, stop: anyio.Event
) -> Summary:
    """Step 3: update a share of the created sessions, read back from the create's results."""
    from masking_async.batch import run_batch

    updates = workdir / "updates.csv"
    count = _write_updates(workdir / "created.jsonl", updates, share)
    _say(f"\n[3/{STEPS}] update {plural(count, 'session')} (longer expiry, recording on)")
    updated = await run_batch(
        updates,
        client=client,
        options=attrs.evolve(options, op="update", out=workdir / "updated.jsonl"),
        stop=stop,
    )
    _say_summary(updated)
    return updated


async def _expire(
    client: MaskingClient, options: BatchOptions, workdir: Path, stop: anyio.Event
) -> Summary:
    """Step 4: expire every active session, so the demo leaves nothing behind."""
    from masking_async.batch import expire_matching

    _say(f"\n[4/{STEPS}] expire every active session (list, then expire)")
    expired = await expire_matching(
        {"status": "active"},
        client=client,
        options=attrs.evolve(options, out=workdir / "expired.jsonl"),
        stop=stop,
    )
    _say_summary(expired)
    return expired
