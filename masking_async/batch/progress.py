"""Live progress on stderr: a redrawn bar on a terminal, a log line now and then otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import anyio

from masking_async.batch.summary import Summary

__all__ = ["show_progress"]


def _line(summary: Summary, started: float, width: int = 30) -> str:
    done, total = summary.done, summary.total
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed else 0.0
    failed = summary.outcomes["failed"]
    if total:
        filled = int(width * done / total)
        eta = (total - done) / rate if rate else 0.0
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
            f"{rate:6.1f}/s  ETA {eta:5.0f}s  errors {failed}"
        )
    return f"{done} rows {rate:6.1f}/s  errors {failed}"


async def show_progress(summary: Summary, stream: TextIO | None = None) -> None:
    """Run until cancelled; 5 redraws a second on a terminal, a line every 5 s elsewhere."""
    out = stream or sys.stderr
    tty = out.isatty()
    started = time.monotonic()
    try:
        while True:
            await anyio.sleep(0.2 if tty else 5.0)
            if tty:
                out.write("\r" + _line(summary, started) + "\x1b[K")
            else:
                out.write(_line(summary, started) + "\n")
            out.flush()
    finally:
        if tty:
            out.write("\r" + _line(summary, started) + "\x1b[K\n")
            out.flush()
