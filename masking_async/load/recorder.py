"""Latency and outcome bookkeeping for a load run, in HDR histograms.

Each finished request gives three times:

* **latency**: from its *due* time to its answer, so a stalled server shows in the tail instead of
  silently slowing the sender down (coordinated omission); kept per operation;
* **server**: the time its bytes spent on the wire, request sent to answer read;
* **queued**: the rest of the call, spent in the client before sending: held by its own rate
  limiter, including the pause a 429's ``Retry-After`` imposes on every call.

So a throttled server (low server time, high queued time, 429s) never reads as a slow one (high
server time, nothing queued), and the reverse. Answers of 429 are counted apart and left out of
the latency: a fast refusal is not a fast answer. The run is also cut into intervals (``series``)
for the report's charts over time.
"""

from __future__ import annotations

from collections import Counter

import attrs
from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "Interval", "Recorder"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3
#: The charts over time need less precision than the totals (and 8 times less memory).
_SERIES_DIGITS = 2
THROTTLED = "429"


def _histogram(digits: int = _DIGITS) -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, digits)


def _micros(seconds: float) -> int:
    return min(max(round(seconds * 1e6), _LOWEST_US), _HIGHEST_US)


def summary_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in milliseconds; empty when nothing was recorded."""
    if not histogram.get_total_count():
        return {}
    values = histogram.get_percentile_to_value_dict(list(PERCENTILES))
    out = {f"p{p:g}": values[p] / 1000 for p in PERCENTILES}
    out["max"] = histogram.get_max_value() / 1000
    out["mean"] = round(histogram.get_mean_value() / 1000, 3)
    return out


@attrs.define
class Interval:
    """One slice of the run: requests due in it, and those that finished in it, by outcome."""

    asked: int = 0
    ok: int = 0
    errors: int = 0
    throttled: int = 0
    latency: HdrHistogram = attrs.field(factory=lambda: _histogram(_SERIES_DIGITS))


@attrs.define
class Recorder:
    """Counts and histograms, per operation and overall, and per ``interval`` seconds."""

    interval: float = 1.0
    histograms: dict[str, HdrHistogram] = attrs.field(factory=dict)
    server: HdrHistogram = attrs.field(factory=_histogram)
    queued: HdrHistogram = attrs.field(factory=_histogram)
    errors: Counter[str] = attrs.field(factory=Counter)
    ok: Counter[str] = attrs.field(factory=Counter)
    throttled: int = 0
    series: list[Interval] = attrs.field(factory=list)

    def due(self, offset: float) -> None:
        """A request was due ``offset`` seconds into the run."""
        self._slot(offset).asked += 1

    def record(
        self,
        op: str,
        latency: float,
        error: str | None = None,
        *,
        server: float | None = None,
        queued: float | None = None,
        at: float = 0.0,
    ) -> None:
        """One finished request; ``error`` is its kind (``"429"``, ``"timeout"``...).

        ``server`` and ``queued`` split the call's own time (see the module docstring); ``at``
        is when it finished, in seconds from the start, for the series.
        """
        slot = self._slot(at)
        if server is not None:
            self.server.record_value(_micros(server))
        if queued is not None:
            self.queued.record_value(_micros(queued))
        if error is not None:
            self.errors[f"{op}:{error}"] += 1
        if error == THROTTLED:
            self.throttled += 1
            slot.throttled += 1
            return
        self.histograms.setdefault(op, _histogram()).record_value(_micros(latency))
        slot.latency.record_value(_micros(latency))
        if error is None:
            self.ok[op] += 1
            slot.ok += 1
        else:
            slot.errors += 1

    @property
    def completed(self) -> int:
        """Requests that finished, with an answer or an error of their own (429s included)."""
        return sum(self.ok.values()) + sum(self.errors.values())

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def overall(self) -> HdrHistogram:
        total = _histogram()
        for histogram in self.histograms.values():
            total.add(histogram)
        return total

    def latency_ms(self, op: str | None = None) -> dict[str, float]:
        """p50/p90/p99/p99.9/max/mean in milliseconds, for one operation or all."""
        return summary_ms(self.overall() if op is None else self.histograms[op])

    def _slot(self, offset: float) -> Interval:
        index = max(0, int(offset // self.interval))
        while len(self.series) <= index:
            self.series.append(Interval())
        return self.series[index]
