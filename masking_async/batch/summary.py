"""The end of a run: counts, speed, latency percentiles, errors by kind, and the exit status."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final

import attrs
from hdrh.histogram import HdrHistogram

from masking_async.batch.results import Result

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Summary"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


@attrs.define
class Summary:
    """Filled in as results arrive; ``exit_status`` is what the command returns."""

    total: int = 0
    invalid: int = 0
    outcomes: Counter[str] = attrs.field(factory=Counter)
    errors: Counter[str] = attrs.field(factory=Counter)
    unprocessed: int = 0
    adopted: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    dry_run: bool = False
    files: dict[str, Path] = attrs.field(factory=dict)
    _latency: HdrHistogram = attrs.field(factory=lambda: HdrHistogram(1, 3_600_000_000, 3))

    def add(self, result: Result) -> None:
        self.outcomes[result.outcome] += 1
        if result.outcome == "failed":
            self.errors[self._kind(result)] += 1
        if result.latency_ms is not None:
            self._latency.record_value(max(1, round(result.latency_ms * 1000)))

    @staticmethod
    def _kind(result: Result) -> str:
        """``400``, ``429``..., ``invalid`` (never sent), or the transport failure's name."""
        if result.status:
            return str(result.status)
        if not result.attempts:
            return "invalid"
        return (result.error or "error").split(" (")[0]

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    @property
    def rate(self) -> float:
        sent = self.done - self.outcomes["skipped"]
        return sent / self.elapsed if self.elapsed else 0.0

    def latency_ms(self) -> dict[str, float]:
        if not self._latency.get_total_count():
            return {}
        values = self._latency.get_percentile_to_value_dict([50.0, 90.0, 99.0])
        return {f"p{p:g}": values[p] / 1000 for p in (50.0, 90.0, 99.0)}

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        failed = self.outcomes["failed"] + self.unprocessed
        if self.dry_run:
            return EXIT_FAILED if self.invalid else EXIT_OK
        return EXIT_FAILED if failed else EXIT_OK

    def format(self) -> str:
        if self.dry_run:
            verdict = "all valid" if not self.invalid else f"{self.invalid} invalid"
            return f"dry run: {self.total} rows checked, {verdict}; nothing was sent"
        counts = ", ".join(f"{self.outcomes[k]} {k}" for k in ("ok", "failed", "skipped"))
        lines = [
            f"{self.done} of {self.total} rows: {counts}"
            + (f", {self.unprocessed} unprocessed" if self.unprocessed else "")
            + (f" ({self.adopted} creates adopted after a lost answer)" if self.adopted else ""),
            f"{self.rate:.1f} rows/s over {self.elapsed:.1f} s",
        ]
        if latency := self.latency_ms():
            lines.append("latency " + "  ".join(f"{k} {v:.1f} ms" for k, v in latency.items()))
        if self.errors:
            lines.append("errors: " + ", ".join(f"{k} x{v}" for k, v in self.errors.most_common()))
        lines += [f"{name}: {path}" for name, path in self.files.items()]
        if self.interrupted:
            lines.append("interrupted: run again with the same --journal to resume")
        return "\n".join(lines)
