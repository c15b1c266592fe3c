"""What a load run should do: its timetable (a rate or stages), the mix, and its bounds."""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from masking_async.client import MAX_CONNECTIONS
from masking_async.load.thresholds import Threshold
from masking_async.load.timetable import Stage, Timetable, TimetableError, parse_rate

__all__ = ["OPERATIONS", "LoadPlan", "PlanError", "parse_mix", "parse_rate"]

#: Operations a load run can mix; ``list`` reads one page.
OPERATIONS = ("create", "get", "update", "expire", "list")

#: The report's charts show about this many points over time, whatever the run's length.
_SERIES_POINTS = 120

PlanError = TimetableError


def parse_mix(text: str) -> dict[str, int]:
    """``"create=5,get=3,update=1,expire=1"`` → weights per operation."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in OPERATIONS:
            raise PlanError(f"--mix: unknown operation {name!r} (one of {', '.join(OPERATIONS)})")
        if not weight.isdigit():
            raise PlanError(f"--mix: weight of {name!r} must be a whole number, got {weight!r}")
        mix[name] = int(weight)
    if sum(mix.values()) <= 0:
        raise PlanError("--mix: at least one operation needs a weight above zero")
    return mix


@attrs.frozen(kw_only=True)
class LoadPlan:
    """A constant ``rate`` for ``duration`` seconds or ``requests`` requests, or ramping ``stages``.

    ``grace`` bounds the wait for answers after the last request is sent; ``thresholds`` are the
    run's pass/fail criteria; ``cleanup_timeout`` bounds the cleanup.
    """

    rate: float | None = None
    duration: float | None = None
    requests: int | None = None
    stages: tuple[Stage, ...] = ()
    mix: Mapping[str, int] = attrs.field(factory=lambda: {"create": 1})
    #: Sessions created before the clock starts, so reads and updates have targets at once.
    warmup_sessions: int = 50
    #: Requests allowed in flight; beyond it the run falls behind and says so.
    max_in_flight: int = 512
    #: Lag behind the schedule above which the run counts as not keeping up.
    lag_tolerance: float = 0.1
    grace: float = 5.0
    cleanup_timeout: float = 120.0
    thresholds: tuple[Threshold, ...] = ()
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.stages:
            if (self.rate, self.duration, self.requests) != (None, None, None):
                raise PlanError("--stages: give either stages or a rate with a duration or count")
        elif self.rate is None or (self.duration is None) == (self.requests is None):
            raise PlanError("give a rate and exactly one of a duration or a request count")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            raise PlanError(f"--duration {self.duration:g}: must be a number of seconds above 0")
        for name in ("grace", "cleanup_timeout"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise PlanError(f"--{name.replace('_', '-')}: must be a number of seconds >= 0")
        if not 1 <= self.max_in_flight <= MAX_CONNECTIONS:
            raise PlanError(
                f"--max-in-flight {self.max_in_flight}: from 1 to {MAX_CONNECTIONS:,} requests"
            )
        if self.warmup_sessions < 0:
            raise PlanError("--warmup: a number of sessions, 0 or more")
        if not self.stages and self.timetable.total_requests < 1:
            raise PlanError("--duration / --requests: the run would send no request at all")

    @property
    def timetable(self) -> Timetable:
        if self.stages:
            return Timetable(self.stages)
        assert self.rate is not None
        return Timetable.constant(self.rate, duration=self.duration, requests=self.requests)

    @property
    def total_requests(self) -> int:
        return self.timetable.total_requests

    @property
    def series_interval(self) -> float:
        """Seconds per point of the charts over time: 1 s, or more for long runs."""
        return float(max(1, math.ceil(self.timetable.duration / _SERIES_POINTS)))
