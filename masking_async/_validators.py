"""attrs validators for numbers that config classes across the package share.

``None`` passes each of them: whether a field may be ``None`` is said by its type.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["non_negative", "positive"]


def positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """A finite number above zero."""
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a positive number, not {value!r}")


def non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """A finite number of zero or more."""
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be >= 0, not {value!r}")
