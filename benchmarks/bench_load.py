"""A load run at a fixed rate against an emulator with latency and jitter: the tail it reports.

The percentile spectrum per operation feeds the latency plot. Wall time is reported against the
asked duration (its baseline, in the same run), with the seconds of each phase: before the
cleanup was paced by the server's own limit, 20 s of load took 48 s (docs/load.md).
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
from _support import AUTH, emulator_process, row

from masking_async.client import RateLimit
from masking_async.load.plan import LoadPlan
from masking_async.load.runner import LoadTarget, run_load

SPECTRUM = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99)


def run(quick: bool = False) -> list[dict[str, Any]]:
    rate, seconds = 200.0, 2.0 if quick else 8.0
    plan = LoadPlan(
        rate=rate, duration=seconds, mix={"create": 5, "get": 3, "update": 1, "expire": 1}
    )
    with emulator_process("--rate-limit", "off", "--latency", "5ms", "--jitter", "10ms") as url:
        target = LoadTarget(base_url=url, rate_limit=RateLimit.off(), **AUTH)
        result = anyio.run(run_load, plan, target)
    schedule = result.schedule
    rows = [
        row("load", f"achieved / asked ({rate:g}/s)", schedule.achieved_rate / rate, "x"),
        row("load", "failed requests", schedule.recorder.failed, ""),
        row(
            "load",
            f"wall time / asked duration ({seconds:g} s)",
            result.phases["total"] / seconds,
            "x",
        ),
        *(row("load", f"phase {name}", value, "s") for name, value in result.phases.items()),
        row("load", "sessions expired by the cleanup", result.cleanup.expired, ""),
    ]
    for op, histogram in sorted(schedule.recorder.histograms.items()):
        values = histogram.get_percentile_to_value_dict(list(SPECTRUM))
        rows += [row("load", f"{op} p{p:g}", values[p] / 1000, "ms") for p in (50.0, 99.0, 99.9)]
        rows += [
            row(
                "load", f"{op} spectrum p{p:g}", values[p] / 1000, "ms", series=f"latency:{op}", x=p
            )
            for p in SPECTRUM
        ]
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
