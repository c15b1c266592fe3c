"""Seeded fault draws: which request fails, and how, repeatably for a given seed."""

from __future__ import annotations

import random
from typing import Literal

from masking_async.emulator.config import Faults

__all__ = ["FaultInjector", "FaultKind"]

FaultKind = Literal["error", "throttle", "drop", "stall"]


class FaultInjector:
    """Draws faults for requests from its own ``random.Random(seed)`` (never the global one)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._kinds: tuple[tuple[FaultKind, float], ...] = (
            ("error", faults.error_rate),
            ("throttle", faults.throttle_rate),
            ("drop", faults.drop_rate),
            ("stall", faults.stall_rate),
        )

    def applies(self, operation: str) -> bool:
        ops = self.faults.operations
        return self.faults.active and (ops is None or operation in ops)

    def draw(self) -> FaultKind | None:
        """One draw: a fault kind with its configured probability, or ``None``."""
        point = self._random.random()
        for kind, rate in self._kinds:
            if point < rate:
                return kind
            point -= rate
        return None

    def delay(self) -> float:
        """Seconds to hold this answer: the fixed latency plus a uniform share of the jitter."""
        jitter = self._random.uniform(0, self.faults.jitter) if self.faults.jitter else 0.0
        return self.faults.latency + jitter
