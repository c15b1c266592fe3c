"""The ``masking-async`` command: one subcommand per module, each registering its own parser.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int`` (the exit status). User errors are reported as one
line on stderr with exit status 2; no traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from masking_async.errors import MaskingError

#: Subcommand modules, in the order ``--help`` lists them.
_COMMANDS = ("demo", "batch", "listing", "load", "emulator", "callbacks")

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="masking-async",
        description="Create, update and expire number-masking sessions at volume.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"masking_async.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"masking_async.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except MaskingError as exc:
        print(f"masking-async: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
