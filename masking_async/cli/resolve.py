"""``masking-async resolve --journal J ROW --session UUID | --not-applied``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "resolve",
        help="settle an unresolved create row by hand (its journal only; nothing is sent)",
        description=(
            "When a lost create's lookup finds several matching sessions, the row stays"
            " unresolved (exit 4) and its candidates are named in the results. Say which one"
            " the row made, or that it made none (the next run then sends it again)."
        ),
    )
    parser.add_argument("row", metavar="ROW", help="the row's key, as the results name it")
    parser.add_argument("--journal", type=Path, required=True, help="the run's SQLite journal")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--session", metavar="UUID", help="the candidate this row's create made")
    choice.add_argument(
        "--not-applied",
        action="store_true",
        help="none of the candidates is this row's: send it again on the next run",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from masking_async.batch.resolve import settle

    entry = anyio.run(settle, args.journal, args.row, args.session)
    done = f"session {entry.session_uuid}" if entry.state == "ok" else "will be sent again"
    print(
        f"row {entry.key} (line {entry.line}): {entry.state}, {done}. Run the job again, or"
        f" masking-async report --journal {args.journal}, to rewrite its files.",
        file=sys.stderr,
    )
    return 0
