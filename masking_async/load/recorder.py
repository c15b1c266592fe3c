"""Latency and outcome bookkeeping for a load run, in HDR histograms per operation.

Latencies are recorded from each request's *intended* start, so a stalled server shows in the
tail instead of silently slowing the sender down (coordinated omission).
"""

from __future__ import annotations

from collections import Counter

import attrs
from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "Recorder"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3


def _histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


@attrs.define
class Recorder:
    """Counts and latency histograms, per operation and overall."""

    histograms: dict[str, HdrHistogram] = attrs.field(factory=dict)
    errors: Counter[str] = attrs.field(factory=Counter)
    ok: Counter[str] = attrs.field(factory=Counter)
    throttled: int = 0

    def record(self, op: str, latency: float, error: str | None = None) -> None:
        """Record one finished request; ``error`` is its kind (``"429"``, ``"timeout"``...)."""
        micros = min(max(round(latency * 1e6), _LOWEST_US), _HIGHEST_US)
        self.histograms.setdefault(op, _histogram()).record_value(micros)
        if error is None:
            self.ok[op] += 1
        else:
            self.errors[f"{op}:{error}"] += 1
            self.throttled += error == "429"

    @property
    def completed(self) -> int:
        return sum(h.get_total_count() for h in self.histograms.values())

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def overall(self) -> HdrHistogram:
        total = _histogram()
        for histogram in self.histograms.values():
            total.add(histogram)
        return total

    def latency_ms(self, op: str | None = None) -> dict[str, float]:
        """p50/p90/p99/p99.9/max in milliseconds, for one operation or all."""
        histogram = self.overall() if op is None else self.histograms[op]
        if not histogram.get_total_count():
            return {}
        values = histogram.get_percentile_to_value_dict(list(PERCENTILES))
        out = {f"p{p:g}": values[p] / 1000 for p in PERCENTILES}
        out["max"] = histogram.get_max_value() / 1000
        return out
