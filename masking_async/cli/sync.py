"""``masking-async sync DESIRED_FILE``: make the server's active sessions match a file.

It lists the active sessions (in parallel, narrowed by ``--where``), plans (see
:mod:`masking_async.batch.sync`), prints the plan, and applies it through the batch engine.
The plan applied is written first, beside its journal (``FILE.sync.plan.jsonl`` and
``FILE.sync.journal``), so a sync that was stopped or killed is finished by running it again:
an unfinished plan is resumed from its journal before anything is listed or planned anew, and
nothing in it is done twice. Expiring (``--prune``, ``--dedupe``, ``--replace``) asks as
``expire --where`` does: on a terminal, else only with ``--yes``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from masking_async.cli._common import add_client_arguments, open_client, run_until_signalled, typed
from masking_async.cli._errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError, writing
from masking_async.cli._filters import check_filters, where_pairs
from masking_async.cli._output import RESULT_SUFFIXES, check_out, plural
from masking_async.cli.batch import confirm_expiry, out_file
from masking_async.durations import parse_seconds

#: ``--detailed-exit-code``: the plan has changes (0 when it has none), as ``terraform plan``.
EXIT_CHANGES = 2
#: What the states of an unfinished plan's rows are: not yet concluded.
_OPEN_STATES = frozenset({"pending", "sending", "unknown"})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sync",
        help="make the active sessions match a file of desired pairs",
        description=(
            "Make the server's active sessions match DESIRED_FILE: a row per pair (first_party,"
            " second_party, and the parameters wanted; an empty cell means any). Prints the plan"
            " (create, update, replace, expire, unchanged) and applies it through the batch"
            " engine, with a journal: run it again to finish a sync that was stopped. Exit"
            " status as for run; with --dry-run --detailed-exit-code, 0 no changes, 2 changes."
            " See docs/batch.md."
        ),
    )
    parser.add_argument("file", type=Path, metavar="DESIRED_FILE", help=".csv, .json or .jsonl")
    parser.add_argument("--format", choices=("csv", "json", "jsonl"), help="format of DESIRED_FILE")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FILTER=VALUE",
        help="look only at the active sessions this list filter matches (repeatable);"
        " others are neither compared nor expired",
    )
    parser.add_argument(
        "--prune", action="store_true", help="expire the active sessions of pairs not in the file"
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="expire and create again a session that differs in a parameter no update changes",
    )
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="expire all but the newest active session of a pair",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print and write the plan; send nothing"
    )
    parser.add_argument(
        "--plan",
        type=out_file,
        metavar="FILE",
        help="where --dry-run writes the plan, a file run takes (default: DESIRED_FILE's name"
        " + .plan.jsonl)",
    )
    parser.add_argument(
        "--detailed-exit-code",
        action="store_true",
        help="with --dry-run: exit 0 when there is nothing to change, 2 when there is",
    )
    parser.add_argument("--yes", action="store_true", help="expire without asking (for scripts)")
    parser.add_argument(
        "--journal",
        type=Path,
        help="the apply's journal; its plan is kept beside it as .plan.jsonl"
        " (default: DESIRED_FILE's name + .sync.journal)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="forget an unfinished plan of an earlier sync and plan anew",
    )
    parser.add_argument(
        "--out",
        type=out_file,
        metavar="FILE",
        help="results of the apply (default: DESIRED_FILE's name + .sync.results.jsonl)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress lines on stderr"
    )
    parser.add_argument(
        "--deadline",
        type=typed(parse_seconds),
        default=900.0,
        metavar="DURATION",
        help="how long a row retries transient failures before it ends unresolved",
    )
    add_client_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from masking_async.batch.rerun import default_journal, discard_journal
    from masking_async.batch.sources import detect_format
    from masking_async.batch.sync import NARROWING, SyncOptions, read_desired, within

    if args.detailed_exit_code and not args.dry_run:
        raise UsageError("--detailed-exit-code goes with --dry-run (the plan's exit code)")
    check_out(args.out, "--out", RESULT_SUFFIXES)
    check_out(args.plan, "--plan", (".jsonl",))
    if args.plan is not None and args.plan.resolve() == args.file.resolve():
        raise UsageError(f"--plan {args.plan} is DESIRED_FILE: writing it would destroy it")
    filters = check_filters(where_pairs(args.where), lambda name: f"--where {name}")
    if filters.setdefault("status", "active") != "active":
        raise UsageError("--where status: sync looks at active sessions only (status=active)")
    for name in filters:
        if name not in (*NARROWING, "status"):
            raise UsageError(
                f"--where {name}: sync narrows only by {', '.join(NARROWING)}, which the rows"
                " of the file are judged by too (any other would hide sessions it must see)"
            )
    everything = read_desired(args.file, detect_format(args.file, args.format))
    desired = within(everything, filters)
    if outside := len(everything) - len(desired):
        verb = "is" if outside == 1 else "are"
        print(
            f"--where: {plural(outside, 'row')} of {args.file} {verb} outside it; left alone",
            file=sys.stderr,
        )
    options = SyncOptions(prune=args.prune, replace=args.replace, dedupe=args.dedupe)
    journal: Path = args.journal or default_journal(args.file, "sync")
    if not os.access(journal.parent, os.W_OK):
        raise UsageError(f"cannot keep the journal {journal} (folder not writable); give --journal")
    applied_plan = journal.with_name(journal.name.removesuffix(".journal") + ".plan.jsonl")
    results = args.out or args.file.with_name(f"{args.file.name}.sync.results.jsonl")

    if args.dry_run:
        return _dry_run(args, desired, filters, options, journal)
    if args.fresh and discard_journal(journal):
        print(f"--fresh: discarded the unfinished plan's journal {journal}", file=sys.stderr)
    left, total = _open_rows(journal)

    async def main(stop: anyio.Event) -> int:
        # One client for the whole command: the listing and the apply share its rate limit.
        async with open_client(args) as client:
            if left and applied_plan.exists():
                print(
                    f"finishing the plan an earlier sync left unfinished: {left} of {total}"
                    " rows to go",
                    file=sys.stderr,
                )
                status = await _apply(client, args, applied_plan, journal, results, stop)
                if status != EXIT_OK:
                    return status
            plan = await _planned(client, desired, filters, options, stop)
            if plan is None:
                return EXIT_INTERRUPTED
            if not plan.changes:
                print("nothing to change", file=sys.stderr)
                return EXIT_FAILED if plan.held else EXIT_OK
            if plan.expiring and not args.yes:
                # A second Ctrl-C must not wait for an answer: the question is left behind.
                await anyio.to_thread.run_sync(
                    confirm_expiry, plan.expiring, abandon_on_cancel=True
                )
            discard_journal(journal)  # the last plan is concluded: this one gets its own
            _write_plan(applied_plan, plan.rows())
            status = await _apply(client, args, applied_plan, journal, results, stop)
            return EXIT_FAILED if status == EXIT_OK and plan.held else status

    with writing(f"{results} or the files beside it"):
        status = run_until_signalled(main)
    return EXIT_INTERRUPTED if status is None else status


def _dry_run(
    args: argparse.Namespace,
    desired: list[Any],
    filters: dict[str, str],
    options: Any,
    journal: Path,
) -> int:
    """List, plan, print the plan and write it; exit 2 for changes with --detailed-exit-code."""
    from masking_async.batch.journal import JournalLocked

    async def main(stop: anyio.Event) -> Any:
        async with open_client(args) as client:
            return await _planned(client, desired, filters, options, stop)

    plan = run_until_signalled(main)
    if plan is None:
        return EXIT_INTERRUPTED
    written = args.plan or args.file.with_name(f"{args.file.name}.plan.jsonl")
    _write_plan(written, plan.rows())
    try:
        unfinished = _open_rows(journal)[0]
    except JournalLocked:
        unfinished = 0
        print(f"note: a sync is applying a plan now ({journal})", file=sys.stderr)
    if unfinished:
        print(
            f"note: an earlier sync left its plan unfinished ({journal});"
            " running sync finishes it first",
            file=sys.stderr,
        )
    print(f"dry run: plan written to {written}; nothing was sent", file=sys.stderr)
    if args.detailed_exit_code and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _open_rows(journal: Path) -> tuple[int, int]:
    """How many rows of the journal's plan are not concluded yet, of how many."""
    from masking_async.batch.journal import Journal

    if not journal.exists():
        return 0, 0
    opened = Journal.open(journal, create=False)
    try:
        states = [entry.state for entry in opened.entries()]
    finally:
        opened.close()
    return sum(state in _OPEN_STATES for state in states), len(states)


def _write_plan(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the plan whole, then move it into place: a crash never leaves half a plan."""
    partial = path.with_name(path.name + ".partial")
    with writing(str(path)):
        with partial.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)


async def _planned(
    client: Any, desired: list[Any], filters: dict[str, str], options: Any, stop: anyio.Event
) -> Any:
    """List the active sessions (in parallel), plan, print the plan; None when interrupted."""
    from masking_async.batch.sync import make_plan

    started = time.monotonic()
    active = []
    async for session in client.iter_sessions(filters, concurrency=8):
        active.append(session)
        if stop.is_set():
            return None
    print(
        f"listed {plural(len(active), 'active session')} in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    plan = make_plan(desired, active, options)
    print(plan.describe(), file=sys.stderr)
    return plan


async def _apply(
    client: Any,
    args: argparse.Namespace,
    plan: Path,
    journal: Path,
    results: Path,
    stop: anyio.Event,
) -> int:
    """Run the plan's rows as ``run`` would, with the sync's journal."""
    from masking_async.batch import BatchOptions, run_batch

    options = BatchOptions(
        op=None,
        format="jsonl",
        concurrency=args.concurrency,
        out=results,
        journal=journal,
        progress=not args.no_progress,
        deadline=args.deadline,
    )
    summary = await run_batch(plan, client=client, options=options, stop=stop)
    print(summary.format(), file=sys.stderr)
    return int(summary.exit_status)
