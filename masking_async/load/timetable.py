"""When each request of a run is due: a constant rate, or ramping stages as k6 ramps them.

A stage moves the arrival rate *linearly* from where the previous stage ended (0/s before the
first) to its target over its duration, as k6's ``ramping-arrival-rate`` executor does; a stage of
``0s`` jumps at once. The number of requests due by time ``t`` is the integral of the rate,
``N(t)``; request ``i`` is due at the ``t`` where ``N(t) = i``. Inside a stage that starts at rate
``r0``, ends at ``r1`` and lasts ``D``, ``N`` grows by ``r0*t + (r1-r0)*t**2/(2D)``, whose inverse

    t = 2m / (r0 + sqrt(r0**2 + 2*(r1-r0)*m/D))

holds for ramps up, ramps down and flat stages alike (no division by ``r1 - r0``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

import attrs

from masking_async.durations import parse_seconds
from masking_async.errors import TimetableError
from masking_async.rates import MAX_ARRIVAL_RATE, parse_per_second

__all__ = ["MAX_LOAD_RATE", "Stage", "Timetable", "TimetableError", "parse_rate", "parse_stages"]

#: The highest arrival rate a run may ask for, per second (:data:`.rates.MAX_ARRIVAL_RATE`).
MAX_LOAD_RATE: Final = MAX_ARRIVAL_RATE
#: Slack for float sums, so 20.0 * 0.1-style products do not lose the last request.
_EPSILON = 1e-9


def parse_rate(text: str, *, option: str = "--rate", allow_zero: bool = False) -> float:
    """``"200/s"``, ``"300/5s"``, ``"1200/min"`` or ``"50"`` → requests per second.

    The grammar is :mod:`masking_async.rates`'s; its errors become :class:`TimetableError`.
    """
    try:
        return parse_per_second(text, what=option, allow_zero=allow_zero)
    except ValueError as exc:
        raise TimetableError(str(exc)) from None


@attrs.frozen
class Stage:
    """Reach ``target`` requests per second by the end of ``duration`` seconds."""

    duration: float
    target: float


def parse_stages(text: str) -> tuple[Stage, ...]:
    """``"30s:50/s,60s:200/s"`` → stages; each ``DURATION:RATE`` with a unit on the duration."""
    stages: list[Stage] = []
    for part in (p.strip() for p in text.split(",")):
        duration, sep, rate = part.partition(":")
        try:  # a unit is required, as k6 requires it: "30" alone could be a rate
            seconds = parse_seconds(duration, unit_required=True)
        except ValueError:
            seconds = None
        if not sep or seconds is None or not math.isfinite(seconds):
            raise TimetableError(
                f"--stages {text!r}: each stage is DURATION:RATE such as 30s:50/s"
                f" (duration with ms, s, m, h or d), not {part!r}"
            )
        target = parse_rate(rate, option=f"--stages {text!r}: stage {part!r}", allow_zero=True)
        stages.append(Stage(seconds, target))
    timetable = Timetable(tuple(stages))
    if timetable.total_requests == 0:
        raise TimetableError(f"--stages {text!r}: these stages send no request at all")
    return timetable.stages


@attrs.frozen
class _Segment:
    """One stage placed on the clock: from ``start``, ``before`` requests were already due."""

    start: float
    duration: float
    r0: float
    r1: float
    before: float
    due: float

    @property
    def end_index(self) -> int:
        """One past the last request due inside this segment."""
        return math.ceil(self.before + self.due - _EPSILON)

    def offset(self, index: int) -> float:
        m = index - self.before
        if m <= 0:
            return self.start
        root = math.sqrt(max(0.0, self.r0**2 + 2 * (self.r1 - self.r0) * m / self.duration))
        return self.start + min(self.duration, 2 * m / (self.r0 + root))


@attrs.frozen
class Timetable:
    """Due offsets (seconds from the start) of every request of a run."""

    stages: tuple[Stage, ...]

    @classmethod
    def constant(
        cls, rate: float, *, duration: float | None = None, requests: int | None = None
    ) -> Timetable:
        """``rate`` per second for ``duration`` seconds, or until ``requests`` have been sent."""
        if requests is not None:
            duration = requests / rate
        assert duration is not None
        return cls((Stage(0.0, rate), Stage(duration, rate)))

    @property
    def duration(self) -> float:
        return sum(stage.duration for stage in self.stages)

    @property
    def total_requests(self) -> int:
        due = sum(segment.due for segment in self._segments())
        return math.floor(due + _EPSILON)

    @property
    def mean_rate(self) -> float:
        """Requests per second over the whole timetable (the asked rate of a constant run)."""
        return self.total_requests / self.duration if self.duration else 0.0

    def offsets(self) -> Iterator[float]:
        """The due offset of each request, in order: ``total_requests`` values."""
        total = self.total_requests
        index = 0
        for segment in self._segments():
            while index < min(segment.end_index, total) and segment.duration > 0:
                yield segment.offset(index)
                index += 1

    def _segments(self) -> Iterator[_Segment]:
        start = rate = before = 0.0
        for stage in self.stages:
            due = (rate + stage.target) / 2 * stage.duration
            yield _Segment(start, stage.duration, rate, stage.target, before, due)
            start, rate, before = start + stage.duration, stage.target, before + due
