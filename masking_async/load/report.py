"""The end of a load run: a table for people and a JSON document for scripts."""

from __future__ import annotations

from typing import Any

from masking_async.load.recorder import PERCENTILES
from masking_async.load.schedule import ScheduleResult

__all__ = ["format_report", "report_dict"]


def report_dict(result: ScheduleResult) -> dict[str, Any]:
    """Every figure of the run, JSON-ready (latencies in milliseconds)."""
    recorder = result.recorder
    return {
        "asked_rate": round(result.asked_rate, 3),
        "achieved_rate": round(result.achieved_rate, 3),
        "elapsed_s": round(result.elapsed, 3),
        "sent": result.sent,
        "completed": recorder.completed,
        "failed": recorder.failed,
        "throttled_429": recorder.throttled,
        "kept_up": result.kept_up,
        "late_requests": result.late,
        "max_lag_ms": round(result.max_lag * 1000, 3),
        "latency_ms": {
            "all": recorder.latency_ms(),
            **{op: recorder.latency_ms(op) for op in sorted(recorder.histograms)},
        },
        "ok": dict(sorted(recorder.ok.items())),
        "errors": dict(sorted(recorder.errors.items())),
    }


def format_report(result: ScheduleResult) -> str:
    """A fixed-width table: one line per operation, then rates and errors."""
    data = report_dict(result)
    columns = [f"p{p:g}" for p in PERCENTILES] + ["max"]
    lines = [f"{'operation':<10}{'count':>8}" + "".join(f"{c + ' ms':>12}" for c in columns)]
    for op, figures in data["latency_ms"].items():
        count = (
            result.recorder.completed
            if op == "all"
            else result.recorder.histograms[op].get_total_count()
        )
        lines.append(f"{op:<10}{count:>8}" + "".join(f"{figures[c]:>12.2f}" for c in columns))
    lines.append(
        f"rate: asked {data['asked_rate']:.1f}/s, achieved {data['achieved_rate']:.1f}/s over "
        f"{data['elapsed_s']:.1f} s; {data['completed']} done, {data['failed']} failed, "
        f"{data['throttled_429']} throttled (429)"
    )
    if data["errors"]:
        lines.append("errors: " + ", ".join(f"{k}={v}" for k, v in data["errors"].items()))
    if not result.kept_up:
        lines.append(
            f"WARNING: the load generator could not keep up with {data['asked_rate']:.1f}/s: "
            f"{result.late} requests left more than the tolerance late (max lag "
            f"{data['max_lag_ms']:.0f} ms). Raise --max-in-flight or lower --rate."
        )
    return "\n".join(lines)
