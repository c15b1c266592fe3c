"""``masking-async callbacks listen`` and ``masking-async emulator call|phone``.

``callbacks listen`` serves a verified callback receiver and prints each event as one JSON line
(as ``stripe listen`` does for webhooks); ``emulator call`` places a call on a running emulator
through its control plane, ``emulator phone`` scripts a number there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

import anyio
import attrs

from masking_async.callbacks import CallbackEvent, CallbackServer, NonceCache, RecordingEvent
from masking_async.cli._common import bind_host, port, run_until_signalled, typed
from masking_async.cli._control import ControlRefused, add_emulator_url, control_call, http_url
from masking_async.cli._errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from masking_async.cli.emulator_ctl import add_admin_token
from masking_async.durations import parse_seconds
from masking_async.emulator.calls.config import Phone
from masking_async.emulator.calls.load import CallLoad, run_call_load
from masking_async.rates import MAX_ARRIVAL_RATE, parse_per_second

__all__ = ["event_json", "register", "register_emulator_commands"]


def event_json(event: CallbackEvent) -> str:
    """One JSON line: the event's family and attributes (times ISO 8601, amounts as text)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value

    fields = attrs.asdict(event, value_serializer=lambda _i, _a, value: plain(value))
    family = "recording" if isinstance(event, RecordingEvent) else "status"
    return json.dumps({"family": family, **fields}, ensure_ascii=False)


_public_url = typed(http_url)


def _call_rate(text: str) -> float:
    """Calls per second (``50``, ``50/s``, ``600/min``): above 0 and at most ``load``'s ceiling,
    so a typo is not a run forever; :mod:`masking_async.rates`' grammar."""
    try:
        return parse_per_second(text, what="rate")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _token(text: str) -> str:
    """A token to check signatures with: not empty (an empty one would match no signature)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "callbacks",
        help="receive session callbacks locally",
        description="Receive session status and recording callbacks. See docs/callbacks.md.",
    )
    commands = parser.add_subparsers(dest="callbacks_command", metavar="COMMAND", required=True)
    listen = commands.add_parser(
        "listen",
        help="serve a callback receiver and print verified events as JSON Lines",
        description=(
            "Serve a receiver for callback_url / recording_callback_url; every event whose"
            " X-Plivo-Signature-V3 verifies is printed on stdout as one JSON line."
        ),
    )
    listen.add_argument(
        "--host", type=bind_host, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    listen.add_argument("--port", type=port, default=8190, help="port; 0 picks a free one")
    listen.add_argument("--path", default="/", help="path to answer on (default /)")
    listen.add_argument(
        "--auth-token",
        action="append",
        type=_token,
        help="token signatures are checked with (repeatable; default: $PLIVO_AUTH_TOKEN)",
    )
    listen.add_argument(
        "--public-url",
        type=_public_url,
        help="the URL the sender was given (http:// or https://), when a proxy or tunnel is"
        " between",
    )
    listen.add_argument(
        "--no-verify", action="store_true", help="accept unsigned requests (local experiments)"
    )
    listen.set_defaults(handler=handle_listen)
    load = commands.add_parser(
        "load",
        help="place calls at a rate on an embedded emulator and report callback latency",
        description=(
            "Start an emulator and a receiver here, place --rate calls per second for"
            " --duration seconds (each answered at once, hung up after --talk seconds) and print"
            " a JSON report: events sent and received, and how late they arrived (ms)."
        ),
    )
    seconds = typed(parse_seconds)
    load.add_argument(
        "--rate",
        type=_call_rate,
        required=True,
        help=f"calls per second: 50, 50/s or 600/min (at most {MAX_ARRIVAL_RATE:,.0f}/s)",
    )
    load.add_argument("--duration", type=seconds, default=10.0, help="how long, e.g. 10s")
    load.add_argument("--talk", type=seconds, default=1.0, help="each call's length, e.g. 1s")
    load.add_argument("--method", choices=("GET", "POST"), default="POST", help="callback method")
    load.add_argument("--record", action="store_true", help="record calls (recording callbacks)")
    load.add_argument(
        "--tick", type=seconds, default=0.05, help="how often the emulator looks at its clock"
    )
    load.set_defaults(handler=handle_load)


def handle_listen(args: argparse.Namespace) -> int:
    tokens = args.auth_token or (
        [os.environ["PLIVO_AUTH_TOKEN"]] if os.environ.get("PLIVO_AUTH_TOKEN") else []
    )
    if not tokens and not args.no_verify:
        print(
            "masking-async callbacks listen: error: --auth-token: required to verify signatures"
            " (or set PLIVO_AUTH_TOKEN, or pass --no-verify)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not args.path.startswith("/"):
        print("masking-async callbacks listen: error: --path: must start with /", file=sys.stderr)
        return EXIT_USAGE

    async def show(event: CallbackEvent) -> None:
        print(event_json(event), flush=True)

    async def work(stop: anyio.Event) -> int:
        server = CallbackServer(
            auth_token=None if args.no_verify else tokens,
            handler=show,
            host=args.host,
            port=args.port,
            path=args.path,
            nonces=NonceCache(),
            public_url=args.public_url,
        )
        try:
            await server.start()
        except OSError as exc:
            print(f"masking-async callbacks listen: error: --port: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            print(
                f"Listening for callbacks on {server.url}; Ctrl-C stops",
                file=sys.stderr,
                flush=True,
            )
            await stop.wait()
        finally:
            await server.stop()
        return 0

    status = run_until_signalled(work)
    return EXIT_INTERRUPTED if status is None else status


def handle_load(args: argparse.Namespace) -> int:
    try:
        load = CallLoad(
            rate=args.rate,
            duration=args.duration,
            talk_seconds=args.talk,
            method=args.method,
            record=args.record,
            tick=args.tick,
        )
    except ValueError as exc:
        print(f"masking-async callbacks load: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = anyio.run(run_call_load, load)
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.lost == 0 and report.deliveries_failed == 0 else 1


# -- emulator call / phone -------------------------------------------------------------------


_SCRIPT = typed(Phone.parse)


def register_emulator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``emulator call`` and ``emulator phone``, under the ``emulator`` command."""
    call = sub.add_parser(
        "call",
        help="place a call on a running emulator",
        description=(
            "A caller dials a virtual number on a running emulator; prints the call as JSON."
            " Scripts: busy, no-answer, or answer=S,hangup=S,digits=D[/D...],dtmf=S."
        ),
    )
    call.add_argument("--from", dest="caller", required=True, help="the caller's number (E.164)")
    call.add_argument("--to", required=True, help="the virtual number dialled (E.164)")
    call.add_argument("--auth-id", help="the account (default: the emulator's first)")
    call.add_argument("--caller-script", type=_SCRIPT, help="how the caller behaves")
    call.add_argument("--callee-script", type=_SCRIPT, help="how the dialled party behaves")
    call.add_argument(
        "--recording-fails", action="store_true", help="a recording that should start fails"
    )
    phone = sub.add_parser(
        "phone", help="script a number on a running emulator", description="Script a number."
    )
    phone.add_argument("number", help="the number (E.164)")
    phone.add_argument("script", type=_SCRIPT, help="busy, no-answer or answer=S,hangup=S,...")
    for parser in (call, phone):
        add_emulator_url(parser, after_action=True)
        add_admin_token(parser, "the emulator's admin token, if it has one", after_action=True)
    call.set_defaults(handler=handle_call)
    phone.set_defaults(handler=handle_phone)


def _script_json(phone: Phone | None) -> dict[str, Any] | None:
    return None if phone is None else attrs.asdict(phone)


def _run_control(args: argparse.Namespace, command: str, method: str, path: str, body: Any) -> int:
    try:
        answer = control_call(args.emulator_url, method, path, body, args.admin_token)
    except ControlRefused as exc:
        print(f"masking-async emulator {command}: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        # As emulator-ctl: an emulator that cannot be reached is exit 1, not a usage error.
        print(f"masking-async emulator {command}: error: --emulator-url: {reason}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(answer, indent=2))
    return 0


def handle_call(args: argparse.Namespace) -> int:
    body = {
        "from": args.caller,
        "to": args.to,
        "auth_id": args.auth_id,
        "caller": _script_json(args.caller_script),
        "callee": _script_json(args.callee_script),
        "recording_fails": args.recording_fails,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return _run_control(args, "call", "POST", "/emulator/calls", body)


def handle_phone(args: argparse.Namespace) -> int:
    path = f"/emulator/phones/{args.number}"
    return _run_control(args, "phone", "PUT", path, _script_json(args.script))
