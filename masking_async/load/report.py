"""The end of a load run: a table for people and a JSON document for scripts (and the HTML one).

The JSON document holds every figure the HTML report draws, so the picture can be rebuilt from
it; latencies are in milliseconds, shares between 0 and 1.
"""

from __future__ import annotations

import math
from typing import Any

from hdrh.histogram import HdrHistogram

from masking_async.load.recorder import PERCENTILES, summary_ms
from masking_async.load.runner import LoadResult
from masking_async.load.thresholds import SHARES
from masking_async.load.verdict import exit_status, measure

__all__ = ["format_report", "report_dict"]

#: Latency histogram bins: each this many times wider than the last, from 0.1 ms.
_BIN_GROWTH, _FIRST_BIN_US = 1.5, 100


def _distribution(histogram: HdrHistogram) -> list[dict[str, float]]:
    """Counts per log-spaced latency bin (upper edge in ms), for the histogram chart."""
    if not histogram.get_total_count():
        return []
    bins = []
    for item in histogram.get_log_iterator(_FIRST_BIN_US, _BIN_GROWTH):
        bins.append(
            {
                "up_to_ms": round(item.value_iterated_to / 1000, 3),
                "count": item.count_added_in_this_iter_step,
            }
        )
    first = next(index for index, item in enumerate(bins) if item["count"])
    last = max(index for index, item in enumerate(bins) if item["count"])
    return bins[first : last + 1]


def _series(result: LoadResult) -> list[dict[str, Any]]:
    recorder = result.schedule.recorder
    points = []
    for index, interval in enumerate(recorder.series):
        latency = summary_ms(interval.latency)
        points.append(
            {
                "t": round(index * recorder.interval, 3),
                "asked": interval.asked,
                "ok": interval.ok,
                "errors": interval.errors,
                "throttled": interval.throttled,
                **{key: latency.get(key) for key in ("p50", "p90", "p99")},
            }
        )
    return points


def report_dict(result: LoadResult) -> dict[str, Any]:
    """Every figure of the run, JSON-ready."""
    schedule, cleanup = result.schedule, result.cleanup
    recorder, plan = schedule.recorder, schedule.plan
    measured = measure(plan.thresholds, schedule)
    overall = recorder.overall()
    return {
        "asked_rate": round(schedule.asked_rate, 3),
        "achieved_rate": round(schedule.achieved_rate, 3),
        "stages": [
            {"duration_s": stage.duration, "target_rate": stage.target} for stage in plan.stages
        ]
        or None,
        "elapsed_s": round(schedule.elapsed, 3),
        "sent": schedule.sent,
        "completed": recorder.completed,
        "interrupted": schedule.interrupted,
        "failed": recorder.failed,
        "throttled_429": recorder.throttled,
        "refused_share": round(schedule.refused_share, 4),
        "failed_share": round(schedule.failed_share, 4),
        "kept_up": schedule.kept_up,
        "not_kept_up": schedule.not_kept_up,
        "late_requests": schedule.late,
        "max_lag_ms": round(schedule.max_lag * 1000, 3),
        "latency_ms": {
            "all": summary_ms(overall),
            **{op: recorder.latency_ms(op) for op in sorted(recorder.histograms)},
        },
        "server_ms": summary_ms(recorder.server),
        "queued_ms": summary_ms(recorder.queued),
        "ok": dict(sorted(recorder.ok.items())),
        "errors": dict(sorted(recorder.errors.items())),
        "thresholds": [
            {
                "threshold": item.threshold.text,
                "metric": item.threshold.metric,
                "value": None if math.isnan(item.value) else round(item.value, 4),
                "passed": item.passed,
            }
            for item in measured
        ],
        "cleanup": {
            "sessions": cleanup.sessions,
            "expired": cleanup.expired,
            "left": list(cleanup.left),
            "throttled_429": cleanup.throttled,
            "lost_creates": cleanup.lost_creates,
            "found": cleanup.found,
            "elapsed_s": round(cleanup.elapsed, 3),
            "paced_at": None
            if result.helper_rate.requests is None
            else f"{result.helper_rate.requests}/{result.helper_rate.per:g}s",
        },
        "phases_s": result.phases,
        "exit_status": exit_status(schedule, measured, len(cleanup.left)),
        "series_interval_s": recorder.interval,
        "series": _series(result),
        "distribution": _distribution(overall),
    }


def format_report(data: dict[str, Any]) -> str:
    """A fixed-width table from :func:`report_dict`: latency per operation, then the rest."""
    columns = [f"p{p:g}" for p in PERCENTILES] + ["max"]
    lines = [f"{'latency':<10}{'count':>8}" + "".join(f"{c + ' ms':>12}" for c in columns)]
    counts = {**data["ok"]}
    for key, count in data["errors"].items():
        op, _, kind = key.partition(":")
        if kind != "429":
            counts[op] = counts.get(op, 0) + count
    counts["all"] = sum(counts.values())
    for op, figures in data["latency_ms"].items():
        if figures:
            row = "".join(f"{figures[c]:>12.2f}" for c in columns)
            lines.append(f"{op:<10}{counts.get(op, 0):>8}" + row)
    for name, key in (("server", "server_ms"), ("queued", "queued_ms")):
        if data[key]:
            row = "".join(f"{data[key][c]:>12.2f}" for c in columns)
            lines.append(f"{name:<10}{'':>8}" + row)
    lines.append(
        "latency: from each request's due time, 429s left out; server: on the wire; "
        "queued: held in the client (its rate limiter, Retry-After pauses)"
    )
    lines.append(
        f"rate: asked {data['asked_rate']:.1f}/s, achieved {data['achieved_rate']:.1f}/s; "
        f"{data['sent']} sent, {data['completed'] - data['failed']} succeeded, "
        f"{data['failed'] - data['throttled_429']} failed, "
        f"{data['throttled_429']} throttled (429, {data['refused_share']:.1%}), "
        f"{data['interrupted']} cut at the end"
    )
    if data["errors"]:
        lines.append("errors: " + ", ".join(f"{k}={v}" for k, v in data["errors"].items()))
    phases = data["phases_s"]
    lines.append(
        "time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
    )
    lines.extend(f"NOT KEPT UP: {reason}" for reason in data["not_kept_up"])
    for item in data["thresholds"]:
        value = item["value"]
        if value is None:
            shown = "nothing measured"
        elif item["metric"] in SHARES:
            shown = f"{value:.2%}"
        else:
            shown = f"{value:.1f} ms"
        verdict = "passed" if item["passed"] else "threshold crossed"
        lines.append(f"{verdict}: {item['threshold']} ({item['metric']} = {shown})")
    return "\n".join(lines)
