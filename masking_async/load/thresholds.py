"""Pass/fail criteria for a run, written as k6 writes them: ``p99<200ms``, ``errors<1%``.

A threshold is ``METRIC OP VALUE``:

=============  =====================================================  ====================
metric         what it measures                                       value
=============  =====================================================  ====================
``pN``         the N-th percentile latency (0 < N <= 100), from the   ``200ms``, ``1.5s``,
               due time, of every answered request but 429s           ``800us``; bare = ms
``max``        the highest such latency                               as above
``mean``       their mean                                             as above
``errors``     failed requests (any kind, 429 and cut ones included)  ``1%`` or ``0.01``
               over requests sent
``rate_429``   requests refused with 429 over requests sent           ``1%`` or ``0.01``
=============  =====================================================  ====================

``OP`` is ``<``, ``<=``, ``>`` or ``>=``. A latency threshold over a run with no latency to
measure (every request refused) is crossed: nothing was shown to hold.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Final

import attrs

from masking_async.errors import ThresholdError

__all__ = ["SHARES", "Threshold", "ThresholdError", "parse_threshold"]

_FORM = re.compile(
    r"\s*(?P<metric>p\d+(?:\.\d+)?|max|mean|errors|rate_429)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|us|s|%)?\s*"
)
_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TO_MS: Final = {None: 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001}
#: Metrics that are a share of the requests sent, not a latency.
SHARES: Final = frozenset({"errors", "rate_429"})


@attrs.frozen
class Threshold:
    """One criterion; ``limit`` is in milliseconds for latencies, a 0-1 share for rates."""

    text: str
    metric: str
    op: str
    limit: float

    @property
    def percentile(self) -> float | None:
        return float(self.metric[1:]) if self.metric.startswith("p") else None

    def holds(self, value: float) -> bool:
        """Whether a measured ``value`` (same unit as ``limit``) meets the threshold."""
        return not math.isnan(value) and _COMPARE[self.op](value, self.limit)


def parse_threshold(text: str) -> Threshold:
    """``"p99<200ms"`` → a :class:`Threshold`, or a :class:`ThresholdError` naming the rule."""

    def refuse(rule: str) -> ThresholdError:
        return ThresholdError(f"--threshold {text!r}: {rule}")

    match = _FORM.fullmatch(text)
    if match is None:
        raise refuse(
            "expected METRIC OP VALUE such as p99<200ms or errors<1%; metrics: pN, max, mean,"
            " errors, rate_429; OP: <, <=, >, >="
        )
    metric, op, unit = match["metric"], match["op"], match["unit"]
    value = float(match["value"])
    if metric in SHARES:
        if unit not in (None, "%"):
            raise refuse(f"{metric} is a share of requests: give a percentage such as 1%")
        share = value / 100 if unit == "%" else value
        if share > 1:
            raise refuse(f"{metric} is a share of requests: at most 100% (or 1)")
        return Threshold(text, metric, op, share)
    if unit == "%":
        raise refuse(f"{metric} is a latency: give a time such as 200ms or 1.5s")
    if metric.startswith("p") and not 0 < float(metric[1:]) <= 100:
        raise refuse(f"percentile {metric[1:]} must be above 0 and at most 100")
    return Threshold(text, metric, op, value * _TO_MS[unit])
