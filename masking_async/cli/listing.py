"""``masking-async list``: every session matching the API's filters, pages read in parallel."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import IO

import anyio
import attrs

from masking_async.cli._common import add_client_arguments, open_client, run_until_signalled
from masking_async.rules import LIST_FILTERS

_COLUMNS = (
    "session_uuid",
    "status",
    "first_party",
    "second_party",
    "virtual_number",
    "created_time",
    "expiry_time",
    "duration",
    "subaccount",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "list",
        help="list sessions matching filters (parallel pagination)",
        description=(
            "List every session matching the filters, reading pages in parallel under the rate"
            " limit. Times are YYYY-MM-DD HH:MM[:ss]; a created_time range over 30 days is split"
            " into windows. Output: JSON Lines (default) or CSV, by --out's extension."
        ),
    )
    for name in LIST_FILTERS:
        if name not in ("limit", "offset"):
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE")
    parser.add_argument("--out", type=Path, help="file to write (.jsonl or .csv); default stdout")
    add_client_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    filters = {name: getattr(args, name) for name in LIST_FILTERS if getattr(args, name, None)}
    out: Path | None = args.out
    as_csv = out is not None and out.suffix.lower() == ".csv"

    async def main(stop: anyio.Event) -> int:
        handle_: IO[str] = out.open("w", newline="") if out else sys.stdout
        writer = csv.DictWriter(handle_, _COLUMNS, extrasaction="ignore") if as_csv else None
        if writer:
            writer.writeheader()
        count = 0
        try:
            async with open_client(args) as client:
                async for session in client.iter_sessions(filters, concurrency=args.concurrency):
                    row = attrs.asdict(session)
                    del row["extra"]
                    if writer:
                        writer.writerow(row)
                    else:
                        handle_.write(json.dumps(row, default=str) + "\n")
                    count += 1
                    if stop.is_set():
                        return 130
        finally:
            if out:
                handle_.close()
        print(f"{count} sessions", file=sys.stderr)
        return 0

    return run_until_signalled(main)
