"""``masking-async emulator``: serve the Masking API emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Account,
    CallsConfig,
    Emulator,
    EmulatorConfig,
    Faults,
    PoolConfig,
    RateLimit,
)
from masking_async.emulator.config import parse_account, parse_seconds

EXIT_USAGE = 2
T = TypeVar("T")


def _typed(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Turn a parser's ValueError into argparse's usage error, keeping its message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def _reserved(text: str) -> tuple[str, str]:
    subaccount, sep, number = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r} must be SUBACCOUNT:NUMBER")
    return subaccount.strip(), number.strip()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="serve a local emulator of the Masking Session API",
        description=(
            "Serve the Masking Session API on 127.0.0.1 for tests and demos. Without --account"
            f" it accepts {DEFAULT_AUTH_ID}:{DEFAULT_AUTH_TOKEN}. See docs/emulator.md."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8180, help="port; 0 picks a free one")
    parser.add_argument(
        "--account",
        action="append",
        type=_typed(parse_account),
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
        type=_typed(_reserved),
        metavar="SUBACCOUNT:E164",
        help="a number reserved to a subaccount (repeatable)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_typed(RateLimit.parse),
        default=RateLimit(),
        metavar="N/WINDOW",
        help="per-account limit, e.g. 300/5s (default) or off",
    )
    parser.add_argument("--seed", type=int, help="seed of session ids, PINs and faults")
    faults = parser.add_argument_group("faults (seeded by --seed)")
    seconds = _typed(parse_seconds)
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
        help="only these operations misbehave: create,get,list,update,expire",
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
    commands = parser.add_subparsers(dest="emulator_command", metavar="COMMAND")
    from masking_async.cli.callbacks import register_emulator_commands  # it imports this module

    register_emulator_commands(commands)


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
        rate_limit=args.rate_limit,
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
        seed=args.seed,
        calls=CallsConfig(
            callback_hosts=args.callback_host or (),
            allow_any_callback_host=args.allow_any_callback_host,
        ),
    )


def handle(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
        emulator = Emulator(config)
    except ValueError as exc:
        print(f"masking-async emulator: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    accounts = ", ".join(account.auth_id for account in config.accounts)
    limit = config.rate_limit or "off"
    emulator.run(
        ready=f"Masking API emulator on {{base_url}} (accounts: {accounts}; rate limit: {limit});"
        " Ctrl-C stops it"
    )
    return 0
