"""``masking-async load``: hold a constant arrival rate and report latency from the timetable."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import anyio

from masking_async.cli._common import rate_limit
from masking_async.cli._shared_limit import add_shared_limit_argument, connected, shared_limiter
from masking_async.emulator.config import DEFAULT_AUTH_ID
from masking_async.load.plan import LoadPlan, PlanError, parse_mix, parse_rate
from masking_async.load.report import format_report, report_dict
from masking_async.load.schedule import Progress, ScheduleResult

EXIT_FAILED, EXIT_USAGE = 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "load",
        help="load-test the API (or the embedded emulator) at a constant arrival rate",
        description=(
            "Send requests on a fixed timetable (an open model, like vegeta or k6) and report "
            "latency percentiles measured from each request's intended start time."
        ),
    )
    parser.add_argument("--rate", default="50/s", help="arrival rate, e.g. 200/s or 300/5s")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, help="seconds to run (default 10)")
    stop.add_argument("--requests", type=int, help="number of requests to send")
    parser.add_argument(
        "--mix",
        default="create=5,get=3,update=1,expire=1",
        help="operation weights: create, get, update, expire, list",
    )
    parser.add_argument("--max-in-flight", type=int, default=512, help="concurrent requests cap")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, s")
    parser.add_argument("--warmup", type=int, default=50, help="sessions created before timing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the operation mix")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--base-url", help="server root; default: an embedded emulator")
    parser.add_argument("--auth-id", help="default: $PLIVO_AUTH_ID")
    parser.add_argument("--auth-token", help="default: $PLIVO_AUTH_TOKEN")
    parser.add_argument("--quiet", action="store_true", help="no live progress")
    add_shared_limit_argument(parser)
    parser.add_argument(
        "--shared-rate",
        type=rate_limit,
        default="300/5s",
        metavar="N/WINDOW",
        help="the account's limit that --shared-limit holds (default 300/5s)",
    )
    parser.set_defaults(handler=handle)


def _print_progress(progress: Progress) -> None:
    print(
        f"[{progress.elapsed:6.1f}s] sent {progress.sent}  done {progress.completed}  "
        f"failed {progress.failed}  429s {progress.throttled}  lag {progress.lag * 1000:.0f} ms",
        file=sys.stderr,
        flush=True,
    )


def handle(args: argparse.Namespace) -> int:
    from masking_async.load.runner import LoadTarget, run_load  # the client: only when used

    try:
        plan = LoadPlan(
            rate=parse_rate(args.rate),
            duration=None if args.requests else (args.duration or 10.0),
            requests=args.requests,
            mix=parse_mix(args.mix),
            warmup_sessions=args.warmup,
            max_in_flight=args.max_in_flight,
            seed=args.seed,
        )
    except PlanError as exc:
        print(f"masking-async load: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = LoadTarget(
        base_url=args.base_url,
        auth_id=args.auth_id,
        auth_token=args.auth_token,
        timeout=args.timeout,
    )
    on_progress = None if args.quiet else _print_progress
    embedded = None if args.base_url else DEFAULT_AUTH_ID  # the embedded emulator's account
    limiter = shared_limiter(args, args.shared_rate, account=embedded)

    async def main() -> ScheduleResult:
        async with connected(limiter) as shared:
            return await run_load(plan, target, on_progress=on_progress, limiter=shared)

    result = anyio.run(main)
    print(format_report(result))
    if args.report:
        args.report.write_text(json.dumps(report_dict(result), indent=2))
    return 0 if result.kept_up else EXIT_FAILED
