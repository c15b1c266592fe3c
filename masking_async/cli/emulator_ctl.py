"""``masking-async emulator-ctl``: drive a running emulator's control plane from a shell.

The command-line face of ``/emulator/`` (see ``docs/emulator.md``), for scripts and for test
suites in any language::

    masking-async emulator-ctl clock --advance 1h --emulator-url http://127.0.0.1:8180
    masking-async emulator-ctl faults --add kind=drop,operation=create,probability=0.1
    masking-async emulator-ctl state --save snapshot.json

Each action prints the emulator's JSON answer. A refusal (a bad rule, an unknown account) is one
line on stderr and exit status 2; an emulator that cannot be reached, exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
from pathlib import Path
from typing import Any, Final

from masking_async.cli._common import typed
from masking_async.cli._control import ControlRefused, add_emulator_url, control_call
from masking_async.durations import parse_seconds
from masking_async.emulator.faults import FaultRule
from masking_async.exit_status import EXIT_FAILED, EXIT_USAGE

__all__ = ["ADMIN_TOKEN_ENV", "add_admin_token", "register"]


#: Where the admin token is read from when not given (keeps it out of the process list).
ADMIN_TOKEN_ENV: Final = "MASKING_EMULATOR_ADMIN_TOKEN"
#: The emulator could not be reached (or answered an error).
EXIT_UNREACHABLE: Final = EXIT_FAILED


def add_admin_token(
    parser: argparse.ArgumentParser, what: str, *, after_action: bool = False
) -> None:
    """``--admin-token``, read from the environment when not given (before or after the
    action, as :func:`add_emulator_url` explains)."""
    parser.add_argument(
        "--admin-token",
        default=argparse.SUPPRESS if after_action else os.environ.get(ADMIN_TOKEN_ENV),
        metavar="TOKEN",
        help=f"{what} (default: ${ADMIN_TOKEN_ENV})",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator-ctl",
        help="drive a running emulator's control plane: reset, state, clock, faults, requests",
        description="Send one control-plane request to a running emulator and print its answer.",
    )
    add_emulator_url(parser)
    add_admin_token(parser, "the emulator's admin token")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    reset = actions.add_parser("reset", help="forget every session, or one account's")
    reset.add_argument("--account", metavar="AUTH_ID", help="only this account")
    clock = actions.add_parser("clock", help="show the clock, or advance a manual one")
    clock.add_argument("--advance", type=typed(parse_seconds), metavar="DURATION", help="e.g. 1h")
    faults = actions.add_parser("faults", help="list, add or remove fault rules")
    faults.add_argument(
        "--add", action="append", type=typed(FaultRule.parse), metavar="RULE", default=[]
    )
    faults.add_argument("--remove", action="append", type=int, metavar="ID", default=[])
    faults.add_argument("--clear", action="store_true", help="remove every rule first")
    requests = actions.add_parser("requests", help="print (or clear) the request log")
    requests.add_argument("--account", metavar="AUTH_ID")
    requests.add_argument("--limit", type=int, metavar="N", help="only the last N")
    requests.add_argument("--clear", action="store_true")
    state = actions.add_parser("state", help="print, save or load the whole state")
    where = state.add_mutually_exclusive_group()
    where.add_argument("--save", type=Path, metavar="FILE", help="write the state to FILE")
    where.add_argument("--load", type=Path, metavar="FILE", help="replace the state with FILE")
    for action in (reset, clock, faults, requests, state):
        add_emulator_url(action, after_action=True)
        add_admin_token(action, "the emulator's admin token", after_action=True)
    parser.set_defaults(handler=handle)


class _Refused(Exception):
    """The emulator refused a request, or a local file cannot be sent; the line to print."""


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    try:
        return control_call(args.emulator_url, method, "/emulator" + path, body, args.admin_token)
    except ControlRefused as exc:
        raise _Refused(f"{method} {path}: {exc.status} {exc.message}") from None


def _query(**params: Any) -> str:
    pairs = [f"{name}={value}" for name, value in params.items() if value is not None]
    return "?" + "&".join(pairs) if pairs else ""


def _run(args: argparse.Namespace) -> Any:
    if args.action == "reset":
        return _call(args, "POST", "/reset", {"account": args.account} if args.account else {})
    if args.action == "clock":
        if args.advance is None:
            return _call(args, "GET", "/clock")
        return _call(args, "POST", "/clock", {"advance": args.advance})
    if args.action == "faults":
        if args.clear:
            _call(args, "DELETE", "/faults")
        for rule_id in args.remove:
            _call(args, "DELETE", f"/faults/{rule_id}")
        for rule in args.add:
            _call(args, "POST", "/faults", rule.to_json())
        return _call(args, "GET", "/faults")
    if args.action == "requests":
        where = _query(account=args.account)
        if args.clear:
            return _call(args, "DELETE", "/requests" + where)
        return _call(args, "GET", "/requests" + _query(account=args.account, limit=args.limit))
    if args.load is not None:
        try:
            document = json.loads(args.load.read_text())
        except (OSError, ValueError) as exc:
            raise _Refused(f"state file {args.load}: {exc}") from None
        return _call(args, "PUT", "/state", document)
    state = _call(args, "GET", "/state")
    if args.save is not None:
        args.save.write_text(json.dumps(state, indent=1))
        return {"saved": str(args.save)}
    return state


def handle(args: argparse.Namespace) -> int:
    try:
        answer = _run(args)
    except _Refused as exc:
        print(f"masking-async emulator-ctl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(
            f"masking-async emulator-ctl: cannot reach {args.emulator_url}: {reason}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    print(json.dumps(answer, indent=1))
    return 0
