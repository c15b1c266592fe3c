"""Shared by the benchmarks: an emulator in its own process, and small timing helpers.

The emulator runs in a child process so that its CPU does not share the benchmark's interpreter
lock: on two cores, the client under test gets one and the server the other.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN

AUTH = {"auth_id": DEFAULT_AUTH_ID, "auth_token": DEFAULT_AUTH_TOKEN}
_URL = re.compile(r"http://127\.0\.0\.1:\d+")
_START_TIMEOUT = 30.0


@contextlib.contextmanager
def emulator_process(*flags: str) -> Iterator[str]:
    """Start ``masking-async emulator --port 0 FLAGS...``; yield its base URL; stop it after."""
    command = [sys.executable, "-m", "masking_async", "emulator", "--port", "0", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(_START_TIMEOUT):
                raise RuntimeError(f"emulator did not start within {_START_TIMEOUT:.0f} s")
        match = _URL.search(process.stdout.readline())
        if match is None:
            raise RuntimeError("emulator printed no base URL")
        yield match.group(0)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
