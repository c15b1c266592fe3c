"""``masking-async list``: every session matching the API's filters, pages read in parallel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from masking_async import spec
from masking_async.cli._common import add_client_arguments, open_client, run_until_signalled
from masking_async.cli._errors import EXIT_INTERRUPTED, EXIT_OK, writing
from masking_async.cli._filters import FILTER_NAMES, TIME_HELP, check_filters
from masking_async.cli._output import RESULT_SUFFIXES, SessionWriter, check_out, plural

_FILTER_HELP = {
    "first_party": "sessions with this first party (E.164, + optional)",
    "second_party": "sessions with this second party (E.164, + optional)",
    "virtual_number": "sessions on this virtual number",
    "status": "active, expired or all (the API's default: all)",
    "subaccount": "sessions of this subaccount",
    "created_time": "created at this second; " + TIME_HELP,
    "expiry_time": "expiring at this second; " + TIME_HELP,
    "duration": "sessions of exactly this duration, seconds",
}
_BOUNDS = {"__gt": "after", "__gte": "at or after", "__lt": "before", "__lte": "at or before"}


def option_name(name: str) -> str:
    """The command-line option of a filter: ``created_time__gt`` is ``--created-time--gt``."""
    return "--" + name.replace("_", "-")


def _filter_help(name: str) -> str:
    base, sep, bound = name.partition("__")
    if not sep:
        return _FILTER_HELP[name]
    what = "duration (seconds)" if base == "duration" else base.replace("_", " ")
    return f"{what} {_BOUNDS['__' + bound]} this value"


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
    filters = parser.add_argument_group("filters (the API's; times in UTC)")
    for name in FILTER_NAMES:
        filters.add_argument(option_name(name), dest=name, metavar="VALUE", help=_filter_help(name))
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="file to write, .jsonl or .csv (default: stdout, JSON Lines)",
    )
    add_client_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in FILTER_NAMES if getattr(args, name) is not None}
    filters = check_filters(given, option_name)
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
