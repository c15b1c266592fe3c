"""``masking-async report --journal J``: a run's files rebuilt from its journal alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from masking_async.cli._errors import writing
from masking_async.cli._output import RESULT_SUFFIXES, check_out
from masking_async.cli.batch import out_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report",
        help="rebuild a run's results and row files from its journal",
        description=(
            "Write the results, failed, unresolved and unprocessed files of the run a journal"
            " recorded, from the journal alone (after a crash, or a lost results file)."
        ),
    )
    parser.add_argument("--journal", type=Path, required=True, help="the run's SQLite journal")
    parser.add_argument(
        "--out", type=out_file, help="results file (default: INPUT.results.jsonl beside the input)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from masking_async.batch.report import rebuild

    out = check_out(args.out, "--out", RESULT_SUFFIXES)
    with writing(f"{out or 'the results'} or the files beside it"):
        summary = rebuild(args.journal, out)
    print(summary.format(), file=sys.stderr)
    return summary.exit_status
