"""Rates as people type them: one grammar for every option that takes a rate.

The client's ``--rate``, the emulator's ``--rate-limit``, ``load --rate``, ``--stages``,
``--cleanup-rate`` and ``--shared-rate``, and ``callbacks load --rate`` all read their text here,
so a spelling that works for one works for all::

    RATE    COUNT "/" [SPAN] UNIT     300/5s, 10/s, 1200/min, 2/500ms, 100/h, 10/d
            COUNT "/" SPAN            10/2 (a span without a unit is in seconds)
            COUNT                     50 (per second; arrival rates only)
            off                       no limit (limits only; also none and 0)
    UNIT    ms | s | sec | m | min | h | d

Two readings share the grammar. A *limit* (:func:`parse_limit`) is a whole number of requests
per window, as the API counts them: ``300/5s`` stays 300 per 5 s (a :class:`~.spec.Rate`), not
60 per second, because the server counts a window: 300 at once is within it.
A limit names its window, so a bare ``300`` is refused (it is more likely ``300/5s`` cut short
than 300 a second). An *arrival rate* (:func:`parse_per_second`) is requests per second, a
fraction allowed (``2.5/s``), a bare number read as per second, and ``off`` refused: a load has
to arrive at some rate. The documented limit, ``300/5s``, is
:data:`masking_async.spec.DOCUMENTED_RATE`.

Errors are :class:`ValueError` whose message starts with ``what`` (the option's name, or "rate
limit") and the text, then says the rule that was broken.
"""

from __future__ import annotations

import math
import re
from typing import Final

from masking_async import spec

__all__ = [
    "MAX_ARRIVAL_RATE",
    "MAX_LIMIT_REQUESTS",
    "OFF",
    "UNITS",
    "parse_limit",
    "parse_per_second",
]

#: Seconds per unit of a rate's window; ``""`` (a span with no unit) is seconds.
UNITS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "": 1.0,
}
#: The spellings of "no limit".
OFF: Final = frozenset({"off", "none", "0"})
#: The most requests one rate-limit window may hold: far above any account's limit, low enough
#: that a limiter's memory of recent sends stays small.
MAX_LIMIT_REQUESTS: Final = 1_000_000
#: The highest arrival rate, per second: far above what one process can send, low enough that a
#: typo is refused instead of scheduling a run that never ends.
MAX_ARRIVAL_RATE: Final = 100_000.0

_RATE = re.compile(
    r"(?P<count>[0-9]+(?:\.[0-9]+)?)"
    r"(?:\s*/\s*(?P<span>[0-9]*\.?[0-9]+)?\s*(?P<unit>[a-z]*))?"
)


def _shape(what: str, text: str, *, bare: bool) -> str:
    """The rule, for an error: the spellings a limit (or, with ``bare``, an arrival rate) takes."""
    documented = spec.DOCUMENTED_RATE.text
    units = ", ".join(unit for unit in UNITS if unit)
    if bare:
        return (
            f"{what} {text!r} must look like 200/s, {documented}, 1200/min or 50"
            f" (COUNT/WINDOW with the window in {units}; a bare COUNT is per second)"
        )
    return (
        f"{what} {text!r} must look like {documented}, 10/s, 1200/min or off"
        f" (COUNT/WINDOW with the window in {units})"
    )


def _read(text: str, what: str, *, bare: bool) -> tuple[float, float]:
    """``(count, window in seconds)``; a ValueError naming ``what`` when it is not a rate."""
    match = _RATE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(_shape(what, text, bare=bare))
    count, span, unit = match.group("count", "span", "unit")
    if span is None and unit is None:  # a bare count
        if not bare:
            raise ValueError(f"{_shape(what, text, bare=bare)}; a limit names its window")
        return float(count), 1.0
    if (span is None and not unit) or unit not in UNITS:
        raise ValueError(_shape(what, text, bare=bare))
    window = float(span or 1) * UNITS[unit]
    if not window > 0:
        raise ValueError(f"{what} {text!r}: the window must be longer than zero")
    if not math.isfinite(window) or not math.isfinite(float(count)):
        raise ValueError(f"{what} {text!r}: the numbers are too long")
    return float(count), window


def parse_limit(text: str, *, what: str = "rate limit") -> spec.Rate | None:
    """``300/5s``, ``10/s``, ``1200/min`` or ``off`` (``None``) as a limit: requests per window.

    The count is a whole number from 1 to :data:`MAX_LIMIT_REQUESTS`.
    """
    if text.strip().lower() in OFF:
        return None
    count, window = _read(text, what, bare=False)
    if not count.is_integer():
        raise ValueError(f"{what} {text!r}: a limit counts whole requests (5/2s, not 2.5/s)")
    if count < 1:
        raise ValueError(f"{what} {text!r}: at least 1 request per window (or off for no limit)")
    if count > MAX_LIMIT_REQUESTS:
        raise ValueError(f"{what} {text!r}: at most {MAX_LIMIT_REQUESTS:,} requests per window")
    return spec.Rate(int(count), window)


def parse_per_second(text: str, *, what: str = "--rate", allow_zero: bool = False) -> float:
    """``200/s``, ``300/5s``, ``1200/min`` or ``50`` as an arrival rate: requests per second.

    Above zero (or zero, with ``allow_zero``: a stage that ramps down to nothing) and at most
    :data:`MAX_ARRIVAL_RATE`.
    """
    if text.strip().lower() in OFF - {"0"}:
        raise ValueError(f"{what} {text!r}: an arrival rate cannot be off")
    count, window = _read(text, what, bare=True)
    per_second = count / window
    if per_second <= 0 and not allow_zero:
        raise ValueError(f"{what} {text!r}: must be above zero")
    if not per_second <= MAX_ARRIVAL_RATE:
        raise ValueError(f"{what} {text!r}: at most {MAX_ARRIVAL_RATE:,.0f} requests per second")
    return per_second
