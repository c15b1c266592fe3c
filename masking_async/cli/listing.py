"""``masking-async list``: every session matching the API's filters, pages read in parallel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from masking_async import spec
from masking_async.cli._common import add_client_arguments, open_client, run_until_signalled
from masking_async.cli._errors import EXIT_INTERRUPTED, EXIT_OK, writing
from masking_async.cli._filters import (
    add_filter_arguments,
    check_filters,
    given_filters,
)
from masking_async.cli._output import RESULT_SUFFIXES, SessionWriter, check_out, plural


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "list",
        help="list sessions matching filters (parallel pagination)",
        description=(
            "List every session matching the filters, reading pages in parallel under the rate"
            " limit. Without a created-time filter the API looks back"
            f" {spec.DEFAULT_LIST_WINDOW.days} days; a created-time range wider than"
            f" {spec.MAX_LIST_WINDOW.days} days is split into windows. Output: JSON Lines on"
            " stdout, or --out FILE (.jsonl or .csv), which expire and update take back as input."
        ),
    )
    add_filter_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="file to write, .jsonl or .csv (default: stdout, JSON Lines)",
    )
    add_client_arguments(parser)
    parser.set_defaults(handler=handle)


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def handle(args: argparse.Namespace) -> int:
    filters = check_filters(*given_filters(args), report=_say)
    out = check_out(args.out, "--out", RESULT_SUFFIXES)

    async def main(stop: anyio.Event) -> int:
        with SessionWriter(out) as writer:
            async with open_client(args) as client, anyio.create_task_group() as group:

                async def stop_listing() -> None:  # even while no page has anything to yield
                    await stop.wait()
                    group.cancel_scope.cancel()

                group.start_soon(stop_listing)
                async for session in client.iter_sessions(filters, concurrency=args.concurrency):
                    writer.write(session)
                group.cancel_scope.cancel()
        print(plural(writer.count, "session"), file=sys.stderr)
        return EXIT_INTERRUPTED if stop.is_set() else EXIT_OK

    with writing(str(out or "stdout")):
        status = run_until_signalled(main)
    return EXIT_INTERRUPTED if status is None else status
