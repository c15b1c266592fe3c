"""``masking-async create|update|expire|run FILE``: the batch engine on the command line.

``expire`` also takes ``--where`` filters (or ``--all``) instead of a file. Expiring by filter
is the one command that can end every session of an account, so it has a safety catch: the
matches are listed first, ``--dry-run`` stops there (count on stderr, list written), and a real
run shows the count and the filters and asks on a terminal; scripts pass ``--yes``. The
confirmed matches are written to a file and expired from it as any file is, so the set expired
is exactly the set shown, and a ``--journal`` can resume it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from masking_async.batch.options import MAX_UNREACHABLE, BatchOptions
from masking_async.batch.results import default_results
from masking_async.batch.sources import STDIN, parse_delimiter
from masking_async.cli._common import (
    add_client_arguments,
    open_client,
    run_until_signalled,
    typed,
)
from masking_async.cli._errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    writing,
)
from masking_async.cli._filters import add_filter_arguments, check_filters, given_filters
from masking_async.cli._output import RESULT_SUFFIXES, SessionWriter, check_out, plural
from masking_async.durations import parse_seconds
from masking_async.phones import REGION_HELP, check_region

_COMMANDS = {
    "create": "create a session for every row",
    "update": "update the session each row names (session_uuid column)",
    "expire": "expire the session each row names, or every active session matching --where",
    "run": "run each row's own operation (op column: create, update or expire)",
}
#: The summary's last line for a run from standard input.
_NO_JOURNAL = (
    "no journal: standard input cannot be read again, so this run cannot be resumed"
    " (save the input to a file and give --journal for that)"
)
#: Where expire-by-filter writes its results unless --out says otherwise.
_EXPIRED_RESULTS = Path("expired.results.jsonl")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for command, summary in _COMMANDS.items():
        parser = sub.add_parser(
            command,
            help=summary,
            description=(
                f"{summary.capitalize()}. FILE is CSV (with a header; , ; or tab), a JSON array"
                " of objects or JSON Lines, plain or .gz/.bz2/.xz, or - for standard input;"
                " columns are the API's parameter names in any case and spacing (First Party),"
                " plus optional op, ref and session_uuid; other columns are carried through to"
                " the results. Exit status: 0 all rows ok, 1 some failed or unprocessed,"
                " 2 bad input or usage (nothing sent), 3 credentials refused (stopped),"
                " 4 some rows unresolved (run again with the journal), 5 the journal could not"
                " be written (stopped), 6 the server could not be reached (nothing sent),"
                " 130 interrupted. See docs/batch.md."
            ),
        )
        parser.add_argument(
            "file",
            type=Path,
            nargs="?" if command == "expire" else None,
            metavar="FILE",
            help="the rows: .csv, .json (an array of objects), .jsonl or .ndjson, each also"
            " .gz, .bz2 or .xz; - reads standard input (with --format; no --journal)"
            + (" (or use --where / --all)" if command == "expire" else ""),
        )
        parser.add_argument(
            "--format",
            choices=("csv", "json", "jsonl"),
            help="format of FILE (default: from its extension)",
        )
        parser.add_argument(
            "--delimiter",
            type=typed(parse_delimiter),
            metavar="CHAR",
            help="a CSV's delimiter: , ; | or tab (default: sniffed among , ; and tab)",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=PARAMETER",
            help="the API parameter a column means, e.g. 'Customer Phone=first_party'"
            " (repeatable; headers differing only in case and spacing need none;"
            " COLUMN=- keeps a column as your own)",
        )
        parser.add_argument(
            "--default-region",
            type=typed(check_region),
            metavar="REGION",
            help=f"read national phone numbers ((415) 555-0102) as numbers of REGION, {REGION_HELP}"
            " (a default_region column overrides it per row; default: numbers need a +country"
            " code)",
        )
        parser.add_argument(
            "--out",
            type=out_file,
            metavar="FILE",
            help="results file, .jsonl or .csv (default: FILE's name + .results.jsonl;"
            f" {default_results(STDIN)} for -"
            + (f"; {_EXPIRED_RESULTS} for --where)" if command == "expire" else ")"),
        )
        parser.add_argument(
            "--journal",
            type=Path,
            help="SQLite journal; the same command again resumes it"
            f" (default: FILE's name + .{command}.journal, beside FILE)",
        )
        parser.add_argument(
            "--no-journal",
            action="store_true",
            help="keep no journal (running the command again then sends every row again)",
        )
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="discard the journal of an earlier run first and send every row again",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check every row (or list the matches of --where) and send nothing",
        )
        parser.add_argument(
            "--strict", action="store_true", help="refuse to start if any row is invalid"
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="no live progress lines on stderr"
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="send again the rows an earlier run ended failed, corrected in FILE or not",
        )
        parser.add_argument(
            "--deadline",
            type=_seconds,
            default=900.0,
            metavar="DURATION",
            help="how long a row retries 5xx answers, timeouts and lost answers before it ends"
            " unresolved (default: 15m)",
        )
        parser.add_argument(
            "--unreachable-after",
            type=_reach_seconds,
            default=BatchOptions().unreachable_after,
            metavar="DURATION",
            help="stop (exit 6, every row unprocessed) when no request has reached the server"
            " this long from the start, e.g. nothing listens at --base-url (at most"
            f" {MAX_UNREACHABLE:g}s; default: {BatchOptions().unreachable_after:g}s)",
        )
        if command == "create":
            parser.add_argument(
                "--skip-active",
                action="store_true",
                help="list the active sessions first; a row whose pair has one is not sent"
                " (outcome skipped, with that session in the results)",
            )
        if command == "expire":
            add_filter_arguments(parser, implied=", instead of FILE; status=active is implied")
            parser.add_argument(
                "--all",
                action="store_true",
                help="expire every active session of the account (no filter)",
            )
            parser.add_argument(
                "--yes", action="store_true", help="do not ask for confirmation (for scripts)"
            )
        add_client_arguments(parser)
        parser.set_defaults(handler=handle, op=None if command == "run" else command)


_seconds = typed(parse_seconds)


def _unreachable_after(text: str) -> float:
    """From 1 s to :data:`MAX_UNREACHABLE`: long enough for a first answer, short enough to
    tell a typo in the URL before a user gives up on the run."""
    value = parse_seconds(text)
    if not 1 <= value <= MAX_UNREACHABLE:
        raise ValueError(f"{text!r} must be from 1 s to {MAX_UNREACHABLE:g} s")
    return value


_reach_seconds = typed(_unreachable_after)


def _file_path(text: str) -> Path:
    """A path naming a file: one ending in a separator names a folder, which Path would hide."""
    if text.endswith((os.sep, "/")):
        raise ValueError(f"{text!r} ends with {text[-1]!r}, so it names a folder; name a file")
    return Path(text)


#: ``--out``'s type: a file's path (checked again, for its extension, before a run).
out_file = typed(_file_path)


def _check_paths(args: argparse.Namespace) -> None:
    check_out(args.out, "--out", RESULT_SUFFIXES)
    if args.journal is not None and not args.journal.parent.is_dir():
        raise UsageError(f"--journal {args.journal}: folder {args.journal.parent} does not exist")
    if args.no_journal and (args.journal is not None or args.fresh or args.retry_failed):
        given = (
            "--journal"
            if args.journal is not None
            else "--fresh"
            if args.fresh
            else ("--retry-failed")
        )
        raise UsageError(f"--no-journal and {given} contradict each other; give one")


def journal_for(args: argparse.Namespace, path: Path, command: str) -> Path | None:
    """The journal a run over ``path`` keeps: ``--journal``, else the default beside the input
    (see :mod:`masking_async.batch.rerun`), none with ``--no-journal`` or ``--dry-run``, nor for
    standard input, which cannot be read again (an explicit ``--journal`` is refused then);
    ``--fresh`` discards it first."""
    from masking_async.batch.rerun import default_journal, discard_journal

    if args.no_journal or args.dry_run or (path == STDIN and args.journal is None):
        return None
    journal: Path = args.journal or default_journal(path, command)
    if args.journal is None and not os.access(journal.parent, os.W_OK):
        raise UsageError(
            f"cannot keep a journal beside {path} (folder {journal.parent} is not writable);"
            " give --journal PATH, or --no-journal"
        )
    if args.fresh and discard_journal(journal):
        print(f"--fresh: discarded the journal {journal}", file=sys.stderr)
    return journal


def handle(args: argparse.Namespace) -> int:
    _check_paths(args)
    if args.op == "expire":
        filters, _ = given_filters(args)
        chosen = [
            name
            for name, given in (("FILE", args.file), ("--where", filters), ("--all", args.all))
            if given
        ]
        if len(chosen) != 1:
            raise UsageError(
                "give exactly one of FILE, --where FILTER=VALUE or --all"
                + (f" (got {' and '.join(chosen)})" if chosen else "")
            )
        if args.file is None:
            return _expire_matching(args)
    journal = journal_for(args, args.file, args.op or "run")
    return _run_file(args, args.file, journal=journal)


def _options(args: argparse.Namespace, **changes: Any) -> Any:
    from masking_async.batch import BatchOptions

    values: dict[str, Any] = {
        "op": args.op,
        "format": args.format,
        "concurrency": args.concurrency,
        "out": args.out,
        "journal": args.journal,
        "dry_run": args.dry_run,
        "strict": args.strict,
        "progress": not args.no_progress,
        "retry_failed": args.retry_failed,
        "deadline": args.deadline,
        "unreachable_after": args.unreachable_after,
        "skip_active": getattr(args, "skip_active", False),
        "delimiter": args.delimiter,
        "columns": _column_map(args.map),
        "default_region": args.default_region,
    }
    return BatchOptions(**{**values, **changes})


def _run_file(args: argparse.Namespace, path: Path, **changes: Any) -> int:
    from masking_async.batch import run_batch
    from masking_async.batch.rerun import rerun_note

    options = _options(args, **changes)
    expiring_matches = "journal" not in changes  # expire --where: run again, it lists again

    async def main(stop: anyio.Event) -> int:
        if options.dry_run:
            summary = await run_batch(path, client=None, options=options)
        else:
            async with open_client(args) as client:
                summary = await run_batch(path, client=client, options=options, stop=stop)
        print(summary.format(), file=sys.stderr)
        if options.dry_run or expiring_matches:
            pass
        elif path == STDIN:
            print(_NO_JOURNAL, file=sys.stderr)
        else:
            print(rerun_note(summary, options.journal), file=sys.stderr)
        return int(summary.exit_status)

    results = options.out or default_results(path)
    with writing(f"{results} or the files beside it"):
        status = run_until_signalled(main)
    return EXIT_INTERRUPTED if status is None else status


def _column_map(pairs: list[str]) -> dict[str, str]:
    from masking_async.batch.columns import ColumnError, parse_map

    try:
        return parse_map(pairs)
    except ColumnError as exc:
        raise UsageError(str(exc)) from None


def _describe(filters: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in filters.items())


def _expire_matching(args: argparse.Namespace) -> int:
    """List the matches, show them, confirm, then expire exactly those from a file."""
    filters = check_filters(*given_filters(args), report=lambda text: print(text, file=sys.stderr))
    filters.setdefault("status", "active")
    if args.journal is not None or args.fresh:
        raise UsageError(
            f"{'--journal' if args.journal is not None else '--fresh'} is for files; to finish"
            " an expire by filter, run it again (sessions already expired no longer match)"
        )
    if args.dry_run:
        listed = check_out(args.out, "--out", RESULT_SUFFIXES)
        count = _list_to(args, filters, SessionWriter(listed))
        if count is None:
            return EXIT_INTERRUPTED
        where = f"; list in {listed}" if listed else ""
        print(
            f"dry run: {plural(count, 'session')} match {_describe(filters)}{where};"
            " nothing was expired",
            file=sys.stderr,
        )
        return EXIT_OK
    results = args.out or _EXPIRED_RESULTS
    matches = results.with_name(f"{results.name.split('.')[0]}.matches.csv")
    # Listed into a scratch folder: nothing lands beside the results before the user says yes.
    with tempfile.TemporaryDirectory(prefix="masking-async-") as scratch:
        listed = Path(scratch) / matches.name
        count = _list_to(args, filters, SessionWriter(listed, columns=("session_uuid",)))
        if count is None:
            return EXIT_INTERRUPTED
        print(f"{plural(count, 'session')} match {_describe(filters)}", file=sys.stderr)
        if count == 0:
            return EXIT_OK
        if not args.yes:
            confirm_expiry(count)
        with writing(str(matches)):
            shutil.move(listed, matches)
    return _run_file(args, matches, out=results, format="csv")


def confirm_expiry(count: int) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to expire {plural(count, 'session')} without confirmation;"
            " add --yes (standard input is not a terminal)"
        )
    # The question goes to stderr with the rest of the talk, so stdout stays clean for data.
    print(
        f"Expire {plural(count, 'session')}? Type yes to go on: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    answer = sys.stdin.readline()
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed; nothing was expired")


def _list_to(
    args: argparse.Namespace, filters: dict[str, str], writer: SessionWriter
) -> int | None:
    """Write every match to ``writer``; the count, or None when interrupted."""

    async def main(stop: anyio.Event) -> int | None:
        with writer:
            async with open_client(args) as client:
                async for session in client.iter_sessions(filters, concurrency=8):
                    writer.write(session)
                    if stop.is_set():
                        return None
        return writer.count

    with writing(str(writer.path or "stdout")):
        return run_until_signalled(main)
