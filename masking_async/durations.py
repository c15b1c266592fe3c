"""Durations as people type them on a command line or in a rule: ``20ms``, ``1.5s``, ``2m``."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["parse_seconds"]

_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_seconds(text: str, *, unit_required: bool = False) -> float:
    """``20ms``, ``1.5s``, ``2m``, ``1h``, ``30d`` or (unless ``unit_required``) bare seconds."""
    match = _DURATION.fullmatch(text)
    if not match or (unit_required and match.group(2) is None):
        raise ValueError(f"{text!r} is not a duration such as 20ms, 1.5s or 2m")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
