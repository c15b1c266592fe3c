"""Shared by the benchmarks: an emulator in its own process, and small timing helpers.

The emulator runs in a child process so that its CPU does not share the benchmark's interpreter
lock: on two cores, the client under test gets one and the server the other.
"""

from __future__ import annotations

import time
from typing import Any

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process

__all__ = ["AUTH", "Stopwatch", "emulator_process", "row"]

AUTH = {"auth_id": DEFAULT_AUTH_ID, "auth_token": DEFAULT_AUTH_TOKEN}


def row(benchmark: str, metric: str, value: float, unit: str = "", **extra: Any) -> dict[str, Any]:
    """One line of the results table."""
    return {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit, **extra}


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
