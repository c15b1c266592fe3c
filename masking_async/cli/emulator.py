"""``masking-async emulator``: serve the Masking API emulator until Ctrl-C (and register
``emulator-ctl``, its control plane from the shell: :mod:`masking_async.cli.emulator_ctl`, and
``emulator call|phone``: :mod:`masking_async.cli.callbacks`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import attrs

from masking_async import spec
from masking_async.cli import emulator_ctl
from masking_async.cli._common import bind_host, port, typed
from masking_async.cli._control import add_emulator_url
from masking_async.cli._errors import EXIT_USAGE
from masking_async.cli.callbacks import register_emulator_commands
from masking_async.cli.emulator_ctl import add_admin_token
from masking_async.durations import parse_seconds
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Account,
    CallsConfig,
    Emulator,
    EmulatorConfig,
    FaultRule,
    Faults,
    ManualClock,
    PoolConfig,
    ServerRateLimit,
)
from masking_async.emulator.config import parse_account, parse_algorithm
from masking_async.emulator.openapi import document_text
from masking_async.emulator.snapshot import SnapshotError


def _reserved(text: str) -> tuple[str, str]:
    subaccount, sep, number = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r} must be SUBACCOUNT:NUMBER")
    return subaccount.strip(), number.strip()


def _state_file(text: str) -> Path:
    """A file whose folder exists: found at start, not when the state is saved at shutdown."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: folder {str(path.parent)!r} not found")
    return path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="serve a local emulator of the Masking Session API",
        description=(
            "Serve the Masking Session API on 127.0.0.1 for tests and demos. Without --account"
            f" it accepts {DEFAULT_AUTH_ID}:{DEFAULT_AUTH_TOKEN}. See docs/emulator.md."
        ),
    )
    parser.add_argument("--host", type=bind_host, default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=port, default=8180, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument(
        "--account",
        action="append",
        type=typed(parse_account),
        metavar="AUTH_ID:AUTH_TOKEN",
        help="an account to accept (repeatable); default: the emulator's default account",
    )
    parser.add_argument(
        "--number",
        action="append",
        metavar="E164",
        help="a pool number (repeatable; replaces the default pool)",
    )
    parser.add_argument(
        "--subaccount-number",
        action="append",
        type=typed(_reserved),
        metavar="SUBACCOUNT:E164",
        help="a number reserved to a subaccount (repeatable)",
    )
    parser.add_argument(
        "--rate-limit",
        type=typed(ServerRateLimit.parse),
        default=ServerRateLimit(),
        metavar="N/WINDOW",
        help=f"per-account limit, e.g. {spec.DOCUMENTED_RATE.text} (the real API's), 1200/min"
        " or off",
    )
    parser.add_argument(
        "--seed", type=int, help="seed of session ids, PINs and faults (default: from the OS)"
    )
    parser.add_argument(
        "--rate-algorithm",
        type=typed(parse_algorithm),
        default="sliding",
        metavar="{sliding,fixed,token}",
        help="how the limit counts: sliding window (default), fixed windows or token bucket",
    )
    parser.add_argument(
        "--clock",
        choices=("system", "manual"),
        default="system",
        help="manual: time stands still (from the moment of start) until advanced over"
        " POST /emulator/clock",
    )
    parser.add_argument(
        "--print-openapi",
        action="store_true",
        help="print the OpenAPI 3.1 document of the emulated API and exit",
    )
    parser.add_argument(
        "--retention",
        type=typed(parse_seconds),
        default=EmulatorConfig().retention,
        metavar="DURATION",
        help="forget ended sessions created longer ago than this, e.g. 1h (default 30d)",
    )
    parser.add_argument(
        "--state",
        type=_state_file,
        metavar="FILE",
        help="load the state from FILE on start (if it exists) and save it there on shutdown",
    )
    add_admin_token(parser, "require 'Authorization: Bearer TOKEN' on /emulator/")
    faults = parser.add_argument_group("faults (seeded by --seed)")
    seconds = typed(parse_seconds)
    faults.add_argument(
        "--latency", type=seconds, default=0.0, help="added to every answer, e.g. 20ms"
    )
    faults.add_argument(
        "--jitter", type=seconds, default=0.0, help="plus up to this much, e.g. 10ms"
    )
    for kind, what in (
        ("error", "500 answers"),
        ("throttle", "injected 429 answers"),
        ("drop", "connections closed without an answer"),
        ("stall", "answers held --stall-seconds"),
    ):
        faults.add_argument(
            f"--{kind}-rate", type=float, default=0.0, help=f"share of {what} (0-1)"
        )
    faults.add_argument(
        "--stall-seconds", type=seconds, default=30.0, help="how long a stall holds"
    )
    faults.add_argument(
        "--fault-phase",
        choices=("before", "after"),
        default="before",
        help="fail before the operation, or after it is applied (the answer is lost)",
    )
    faults.add_argument(
        "--fault-operations",
        type=lambda text: frozenset(name.strip() for name in text.split(",") if name.strip()),
        help="only these operations misbehave: create,get,list,update,expire (default: all)",
    )
    faults.add_argument(
        "--fault",
        action="append",
        type=typed(FaultRule.parse),
        metavar="RULE",
        help=(
            "a fault rule (repeatable), e.g. kind=error,operation=update,status=503,"
            "phase=after,probability=0.5,count=3; kinds: error, throttle, drop, stall"
        ),
    )
    calls = parser.add_argument_group("calls and callbacks (see docs/callbacks.md)")
    calls.add_argument(
        "--callback-host",
        action="append",
        metavar="HOST",
        help="a host callbacks may go to besides loopback (repeatable)",
    )
    calls.add_argument(
        "--allow-any-callback-host",
        action="store_true",
        help="let callbacks go to any host (by default only loopback and --callback-host)",
    )
    parser.set_defaults(handler=handle)
    add_emulator_url(parser, what=", for the call and phone commands")
    register_emulator_commands(parser.add_subparsers(dest="emulator_command", metavar="COMMAND"))
    emulator_ctl.register(sub)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator config the parsed flags describe (raises ValueError on a bad combination)."""
    reserved: dict[str, list[str]] = {}
    for subaccount, number in args.subaccount_number or ():
        reserved.setdefault(subaccount, []).append(number)
    pool = PoolConfig(subaccount_numbers=reserved)
    if args.number:
        pool = PoolConfig(numbers=args.number, subaccount_numbers=reserved)
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        accounts=args.account or (Account(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN),),
        pool=pool,
        rate_limit=(
            None
            if args.rate_limit is None
            else attrs.evolve(args.rate_limit, algorithm=args.rate_algorithm)
        ),
        faults=Faults(
            latency=args.latency,
            jitter=args.jitter,
            error_rate=args.error_rate,
            throttle_rate=args.throttle_rate,
            drop_rate=args.drop_rate,
            stall_rate=args.stall_rate,
            stall_seconds=args.stall_seconds,
            phase=args.fault_phase,
            operations=args.fault_operations,
            seed=args.seed,
        ),
        fault_rules=args.fault or (),
        seed=args.seed,
        admin_token=args.admin_token,
        retention=args.retention,
        state_file=args.state,
        calls=CallsConfig(
            callback_hosts=args.callback_host or (),
            allow_any_callback_host=args.allow_any_callback_host,
        ),
    )


def handle(args: argparse.Namespace) -> int:
    if args.print_openapi:
        sys.stdout.write(document_text())
        return 0
    try:
        config = build_config(args)
        clock = ManualClock(float(int(time.time()))) if args.clock == "manual" else None
        emulator = Emulator(config, clock=clock)
    except ValueError as exc:
        return _usage(str(exc))
    accounts = ", ".join(account.auth_id for account in config.accounts)
    limit = config.rate_limit or "off"
    try:
        emulator.run(
            ready=f"Masking API emulator on {{base_url}} (accounts: {accounts}; rate limit:"
            f" {limit}; clock: {args.clock}); control plane under {{base_url}}/emulator/;"
            " Ctrl-C stops it"
        )
    except SnapshotError as exc:
        return _usage(str(exc))
    except OSError as exc:
        reason = (exc.strerror or str(exc)).split(": ")[-1]
        return _usage(
            f"--port {config.port}: cannot listen on {config.host}:{config.port}: {reason}"
        )
    return 0


def _usage(line: str) -> int:
    print(f"masking-async emulator: error: {line}", file=sys.stderr)
    return EXIT_USAGE
