"""The ``masking-async`` command: one subcommand per module, each registering its own parser.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int`` (the exit status). Usage and input errors are one
line on stderr and exit status 2 (see ``_errors``); no traceback reaches the user for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from masking_async.cli._errors import EXIT_INTERRUPTED, EXIT_USAGE, explain
from masking_async.cli._logs import LOG_FORMATS, configure_logging

__all__ = ["build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
_COMMANDS = (
    "demo",
    "batch",
    "sync",
    "report",
    "resolve",
    "listing",
    "load",
    "emulator",
    "callbacks",
)


def _version() -> str:
    try:
        return version("masking_async")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


class _HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its help, unless it has none or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS, [])
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line naming the option, exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_logging_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v and --log-format, accepted before and after the subcommand alike."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="log more on stderr: -v retries and adoptions (INFO), -vv every request (DEBUG);"
        " phone numbers in log lines are masked to their last 4 digits (default: warnings only)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text" if top else argparse.SUPPRESS,
        help="text lines, or one JSON object per line for a scheduler's log collector"
        " (default: text)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="masking-async",
        description="Create, update and expire number-masking sessions at volume.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_logging_arguments(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"masking_async.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"masking_async.cli.{name}":
                raise
            continue
        module.register(sub)
    for choice in sub.choices.values():
        _add_logging_arguments(choice, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.log_format)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as exc:
        found = explain(exc)
        if found is None:
            raise
        status, line = found
        print(f"masking-async {args.command}: error: {line}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
