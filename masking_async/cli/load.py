"""``masking-async load``: hold a timetable, report latency from it, judge the run, clean up.

Exit statuses are those of :mod:`masking_async.load.verdict`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from masking_async import spec
from masking_async.cli._common import base_url, rate_limit
from masking_async.cli._shared_limit import add_shared_limit_argument, connected, shared_limiter
from masking_async.client import MAX_TIMEOUT, MIN_TIMEOUT, Limiter, RateLimit
from masking_async.emulator.config import DEFAULT_AUTH_ID
from masking_async.load.plan import LoadPlan, PlanError, parse_mix
from masking_async.load.thresholds import ThresholdError, parse_threshold
from masking_async.load.timetable import parse_rate, parse_stages
from masking_async.load.verdict import EXIT_INTERRUPTED, EXIT_USAGE

if TYPE_CHECKING:
    from masking_async.load.cleanup import CleanupProgress, CleanupResult
    from masking_async.load.runner import LoadResult, LoadTarget
    from masking_async.load.schedule import Progress

_DEFAULT_RATE, _DEFAULT_DURATION = "50/s", 10.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "load",
        help="load-test the API (or the embedded emulator) at a constant or ramping rate",
        description=(
            "Send requests on a fixed timetable (an open model, like vegeta or k6) and report "
            "latency percentiles measured from each request's intended start time, time queued "
            "in the client apart from time at the server, and 429s apart. Exit status: 0 passed, "
            "1 load not delivered, 2 usage error, 3 sessions left behind, 99 threshold crossed. "
            "See docs/load.md."
        ),
    )
    when = parser.add_argument_group("timetable")
    when.add_argument(
        "--rate",
        help=f"constant arrival rate: 200/s, {spec.DOCUMENTED_RATE.text} (default {_DEFAULT_RATE})",
    )
    when.add_argument(
        "--duration", type=float, help=f"seconds at --rate (default {_DEFAULT_DURATION:g})"
    )
    when.add_argument("--requests", type=int, help="number of requests at --rate, instead")
    when.add_argument(
        "--stages",
        help="ramping rate instead of --rate, as k6: 30s:50/s,60s:200/s (linear from 0/s)",
    )
    parser.add_argument(
        "--mix",
        default="create=5,get=3,update=1,expire=1",
        help="operation weights: create, get, update, expire, list",
    )
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="CRITERION",
        help="pass/fail, repeatable: p99<200ms, p50<50ms, max<2s, errors<1%%, rate_429<0.5%%",
    )
    parser.add_argument("--max-in-flight", type=int, default=512, help="concurrent requests cap")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, s")
    parser.add_argument(
        "--grace", type=float, default=5.0, help="seconds to wait for answers after the last send"
    )
    parser.add_argument("--warmup", type=int, default=50, help="sessions created before timing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the operation mix")
    parser.add_argument(
        "--cleanup-timeout",
        type=float,
        default=120.0,
        help="seconds the cleanup may take to expire every session the run made",
    )
    parser.add_argument(
        "--cleanup-rate",
        default=spec.DOCUMENTED_RATE.text,
        help="rate limit of warm-up and cleanup against --base-url (off: none)",
    )
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--html", type=Path, help="write the HTML report (charts) here")
    parser.add_argument(
        "--base-url",
        type=base_url,
        help="server root: https://, or http:// to a loopback host; default: an embedded emulator",
    )
    parser.add_argument("--auth-id", help="default: $PLIVO_AUTH_ID")
    parser.add_argument("--auth-token", help="default: $PLIVO_AUTH_TOKEN")
    parser.add_argument("--quiet", action="store_true", help="no live progress lines")
    add_shared_limit_argument(parser)
    parser.add_argument(
        "--shared-rate",
        type=rate_limit,
        default=spec.DOCUMENTED_RATE.text,
        metavar="N/WINDOW",
        help="the account's limit that --shared-limit holds (default: %(default)s)",
    )
    parser.set_defaults(handler=handle)


def _plan(args: argparse.Namespace) -> LoadPlan:
    """The plan the options describe; a :class:`PlanError` names the first bad one."""
    if args.stages is not None:
        clash = [
            name
            for name, value in (
                ("--rate", args.rate),
                ("--duration", args.duration),
                ("--requests", args.requests),
            )
            if value is not None
        ]
        if clash:
            raise PlanError(f"--stages: not with {', '.join(clash)} (the stages are the timetable)")
        timing: dict[str, Any] = {"stages": parse_stages(args.stages)}
    else:
        if args.duration is not None and args.requests is not None:
            raise PlanError("--duration and --requests: give one of them")
        timing = {
            "rate": parse_rate(args.rate or _DEFAULT_RATE),
            "duration": None
            if args.requests is not None
            else (_DEFAULT_DURATION if args.duration is None else args.duration),
            "requests": args.requests,
        }
    if not MIN_TIMEOUT <= args.timeout <= MAX_TIMEOUT:
        raise PlanError(
            f"--timeout {args.timeout:g}: must be from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} seconds"
        )
    try:
        thresholds = tuple(parse_threshold(text) for text in args.threshold)
    except ThresholdError as exc:
        raise PlanError(str(exc)) from None
    return LoadPlan(
        **timing,
        mix=parse_mix(args.mix),
        warmup_sessions=args.warmup,
        max_in_flight=args.max_in_flight,
        grace=args.grace,
        cleanup_timeout=args.cleanup_timeout,
        thresholds=thresholds,
        seed=args.seed,
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def handle(args: argparse.Namespace) -> int:
    """Check every option first, run the load until done or stopped, then report and judge it."""
    from masking_async.load.report import format_report, report_dict

    try:
        plan = _plan(args)
        helper_rate = _cleanup_rate(args)
        _fill_credentials(args)
        _check_output_folders(args)
    except PlanError as exc:
        print(f"masking-async load: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = _run(args, plan, _target(args, helper_rate))
    if result is None:  # a second Ctrl-C: cut short before any figure
        return EXIT_INTERRUPTED
    data = report_dict(result)
    print(format_report(data))
    _say_cleanup(result.cleanup)
    _write_reports(args, data)
    return int(data["exit_status"])


def _cleanup_rate(args: argparse.Namespace) -> RateLimit:
    """The pace of the cleanup's helper client, refused as a usage error like the plan's."""
    try:
        return rate_limit(args.cleanup_rate, what="--cleanup-rate")
    except argparse.ArgumentTypeError as exc:
        raise PlanError(str(exc)) from None


def _fill_credentials(args: argparse.Namespace) -> None:
    """Take the account from the environment when the options leave it out.

    Only a real ``--base-url`` needs one: the embedded emulator has its own account.
    """
    if args.base_url:
        args.auth_id = args.auth_id or os.environ.get("PLIVO_AUTH_ID")
        args.auth_token = args.auth_token or os.environ.get("PLIVO_AUTH_TOKEN")
        if not (args.auth_id and args.auth_token):
            raise PlanError(
                "--base-url needs --auth-id and --auth-token (or PLIVO_AUTH_ID and"
                " PLIVO_AUTH_TOKEN)"
            )


def _check_output_folders(args: argparse.Namespace) -> None:
    """Refuse a report whose folder is missing now, not after the whole run."""
    for option, path in (("--report", args.report), ("--html", args.html)):
        if path is not None and not path.parent.is_dir():
            raise PlanError(f"{option} {str(path)!r}: folder {str(path.parent)!r} not found")


def _target(args: argparse.Namespace, helper_rate: RateLimit) -> LoadTarget:
    """Where the load goes (no base URL: an embedded emulator) and how it is reached."""
    from masking_async.load.runner import LoadTarget

    return LoadTarget(
        base_url=args.base_url,
        auth_id=args.auth_id,
        auth_token=args.auth_token,
        timeout=args.timeout,
        rate_limit=helper_rate,
    )


def _run(args: argparse.Namespace, plan: LoadPlan, target: LoadTarget) -> LoadResult | None:
    """Run the load, sharing the account's limit if asked; None after a second Ctrl-C."""
    from masking_async.cli._common import run_until_signalled  # only when used
    from masking_async.load.runner import run_load

    embedded = None if args.base_url else DEFAULT_AUTH_ID  # the embedded emulator's account
    limiter = shared_limiter(args, args.shared_rate, account=embedded)

    async def work(stop: anyio.Event) -> LoadResult:
        async with connected(limiter) as shared:
            return await _load(stop, shared)

    async def _load(stop: anyio.Event, shared: Limiter | None) -> LoadResult:
        return await run_load(
            plan,
            target,
            stop=stop,
            limiter=shared,
            on_progress=None if args.quiet else _say_progress,
            on_cleanup=None if args.quiet else _say_cleanup_progress,
        )

    return run_until_signalled(work)


def _say_progress(p: Progress) -> None:
    """One live line while the timetable runs."""
    _say(
        f"[{p.elapsed:6.1f}s] sent {p.sent}  done {p.completed}  failed {p.failed}  "
        f"429s {p.throttled}  lag {p.lag * 1000:.0f} ms"
    )


def _say_cleanup_progress(c: CleanupProgress) -> None:
    """One live line while the sessions the run made are expired."""
    _say(
        f"cleanup: {c.expired}/{c.sessions} expired, {c.throttled} throttled (429), "
        f"{c.elapsed:.0f} s"
    )


def _say_cleanup(cleanup: CleanupResult) -> None:
    """How the cleanup ended, naming every session it left active so they can be expired."""
    if cleanup.left:
        _say(
            f"cleanup: could not expire {len(cleanup.left)} of {cleanup.sessions} sessions the run"
            f" made (still active): {' '.join(cleanup.left)}"
        )
    else:
        _say(
            f"cleanup: expired {cleanup.expired} of {cleanup.sessions} sessions in "
            f"{cleanup.elapsed:.1f} s ({cleanup.throttled} throttled)"
        )


def _write_reports(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Write the JSON and HTML reports asked for."""
    if args.report:
        args.report.write_text(json.dumps(data, indent=2))
    if args.html:
        from masking_async.load.html import render_html  # pygal: only when a page is asked for

        args.html.write_text(render_html(data), encoding="utf-8")
