"""Did the run pass? Thresholds measured, and the command's exit status.

=======  =================================================================================
status   meaning
=======  =================================================================================
0        the asked load was delivered, every threshold held, nothing was left behind
1        the asked load was not delivered: the generator fell behind, the server refused
         part of it with 429, or a third or more of the requests failed
2        a usage error (an option that cannot be read); nothing was sent
3        the cleanup could not expire every session the run made (they are named)
99       a threshold was crossed (k6's status for the same)
130      interrupted (Ctrl-C): sending stopped, then the drain, cleanup and report as usual
=======  =================================================================================

When several apply, the first of 3, 130, 99, 1 wins: sessions left behind need a person, a crossed
threshold is the gate's answer, and an undelivered load explains both.
"""

from __future__ import annotations

import math
from typing import Final

import attrs
from hdrh.histogram import HdrHistogram

from masking_async.exit_status import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from masking_async.load.schedule import ScheduleResult
from masking_async.load.thresholds import Threshold

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_LEFT_BEHIND",
    "EXIT_NOT_DELIVERED",
    "EXIT_OK",
    "EXIT_THRESHOLD",
    "EXIT_USAGE",
    "Measured",
    "measure",
]

EXIT_NOT_DELIVERED: Final = EXIT_FAILED
EXIT_LEFT_BEHIND: Final = 3
EXIT_THRESHOLD: Final = 99


@attrs.frozen
class Measured:
    """A threshold and what the run measured for it (ms for latencies, a share for rates)."""

    threshold: Threshold
    value: float

    @property
    def passed(self) -> bool:
        return self.threshold.holds(self.value)


def _value(threshold: Threshold, result: ScheduleResult, overall: HdrHistogram) -> float:
    if threshold.metric == "errors":
        return result.failed_share
    if threshold.metric == "rate_429":
        return result.refused_share
    if not overall.get_total_count():
        return math.nan
    if threshold.metric == "max":
        return float(overall.get_max_value()) / 1000
    if threshold.metric == "mean":
        return float(overall.get_mean_value()) / 1000
    assert threshold.percentile is not None
    return float(overall.get_value_at_percentile(threshold.percentile)) / 1000


def measure(thresholds: tuple[Threshold, ...], result: ScheduleResult) -> list[Measured]:
    """Each threshold with the run's value for it, in the order given."""
    overall = result.recorder.overall()  # merged once, not once per threshold
    return [Measured(threshold, _value(threshold, result, overall)) for threshold in thresholds]


def exit_status(result: ScheduleResult, measured: list[Measured], left: int) -> int:
    """The command's exit status for a finished run (see the table above)."""
    if left:
        return EXIT_LEFT_BEHIND
    if result.stopped:
        return EXIT_INTERRUPTED
    if not all(item.passed for item in measured):
        return EXIT_THRESHOLD
    return EXIT_OK if result.kept_up else EXIT_NOT_DELIVERED
