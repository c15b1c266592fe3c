"""What a load run should do: the arrival rate, how long, and the mix of operations."""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

__all__ = ["OPERATIONS", "LoadPlan", "PlanError", "parse_mix", "parse_rate"]

#: Operations a load run can mix; ``list`` reads one page.
OPERATIONS = ("create", "get", "update", "expire", "list")

_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?)?\s*([a-z]*))?\s*")


class PlanError(ValueError):
    """A load option that cannot be understood; the message names it."""


def parse_rate(text: str) -> float:
    """``"200/s"``, ``"300/5s"``, ``"1200/min"`` or ``"50"`` → requests per second."""
    match = _RATE.fullmatch(text.lower())
    unit = (match.group(3) or "") if match else None
    if match is None or unit not in _UNITS:
        raise PlanError(f"--rate {text!r}: expected COUNT/PERIOD such as 200/s or 300/5s")
    count, span = float(match.group(1)), float(match.group(2) or 1)
    per_second = count / (span * _UNITS[unit])
    if per_second <= 0:
        raise PlanError(f"--rate {text!r}: must be above zero")
    return per_second


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
    """A constant arrival rate held for ``duration`` seconds or ``requests`` requests."""

    rate: float
    duration: float | None = None
    requests: int | None = None
    mix: Mapping[str, int] = attrs.field(factory=lambda: {"create": 1})
    #: Sessions created before the clock starts, so reads and updates have targets at once.
    warmup_sessions: int = 50
    #: Requests allowed in flight; beyond it the run falls behind and says so.
    max_in_flight: int = 512
    #: Lag behind the schedule above which the run counts as not keeping up.
    lag_tolerance: float = 0.1
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if (self.duration is None) == (self.requests is None):
            raise PlanError("give exactly one of a duration or a request count")

    @property
    def total_requests(self) -> int:
        if self.requests is not None:
            return self.requests
        assert self.duration is not None
        return max(1, round(self.duration * self.rate))
