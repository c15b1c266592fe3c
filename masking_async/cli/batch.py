"""``masking-async create|update|expire|run FILE``: the batch engine on the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from masking_async.cli._common import add_client_arguments, open_client, run_until_signalled
from masking_async.rules import LIST_FILTERS

_COMMANDS = {
    "create": "create a session for every row",
    "update": "update the session each row names (session_uuid column)",
    "expire": "expire the session each row names, or every session matching --where",
    "run": "run each row's own operation (op column: create, update or expire)",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for command, summary in _COMMANDS.items():
        parser = sub.add_parser(
            command,
            help=summary,
            description=(
                f"{summary.capitalize()}. FILE is CSV (with a header), a JSON array of objects or"
                " JSON Lines; columns are the API's parameter names, plus optional op, ref and"
                " session_uuid. Exit status: 0 all rows ok, 1 some failed or unprocessed,"
                " 2 bad input or usage, 130 interrupted. See docs/batch.md."
            ),
        )
        parser.add_argument("file", type=Path, nargs="?" if command == "expire" else None)
        parser.add_argument(
            "--format", choices=("csv", "json", "jsonl"), help="default: by extension"
        )
        parser.add_argument("--out", type=Path, help="results file, .jsonl or .csv")
        parser.add_argument("--journal", type=Path, help="SQLite journal; rerun with it to resume")
        parser.add_argument("--dry-run", action="store_true", help="check every row, send nothing")
        parser.add_argument("--strict", action="store_true", help="refuse to start on invalid rows")
        parser.add_argument("--no-progress", action="store_true", help="no live progress output")
        if command == "expire":
            parser.add_argument(
                "--where",
                action="append",
                default=[],
                metavar="FILTER=VALUE",
                help="list filter instead of a file, e.g. status=active (repeatable)",
            )
        add_client_arguments(parser)
        parser.set_defaults(handler=handle, op=None if command == "run" else command)


def _filters(pairs: list[str]) -> dict[str, str]:
    filters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in LIST_FILTERS:
            raise ValueError(f"--where {pair!r}: expected FILTER=VALUE with a filter of the API")
        filters[name] = value
    return filters


def handle(args: argparse.Namespace) -> int:
    from masking_async.batch import BatchOptions, expire_matching, run_batch
    from masking_async.batch.summary import EXIT_USAGE

    where = getattr(args, "where", [])
    if (args.file is None) == (not where):
        print("masking-async expire: give a FILE or --where filters, not both", file=sys.stderr)
        return EXIT_USAGE
    options = BatchOptions(
        op=args.op,
        format=args.format,
        concurrency=args.concurrency,
        out=args.out,
        journal=args.journal,
        dry_run=args.dry_run,
        strict=args.strict,
        progress=not args.no_progress,
    )

    async def main(stop: anyio.Event) -> int:
        if args.dry_run:
            summary = await run_batch(args.file, client=None, options=options)
        else:
            async with open_client(args) as client:
                if where:
                    summary = await expire_matching(
                        _filters(where), client=client, options=options, stop=stop
                    )
                else:
                    summary = await run_batch(args.file, client=client, options=options, stop=stop)
        print(summary.format(), file=sys.stderr)
        return summary.exit_status

    try:
        return run_until_signalled(main)
    except ValueError as exc:
        print(f"masking-async: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
