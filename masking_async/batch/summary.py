"""The end of a run: counts, speed, latency percentiles, errors by kind, and the exit status."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final, Literal

import attrs
from hdrh.histogram import HdrHistogram

from masking_async.batch.results import Result
from masking_async.exit_status import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_JOURNAL",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_UNRESOLVED",
    "EXIT_USAGE",
    "Summary",
]

# EXIT_OK: every row ok. EXIT_FAILED: some rows failed (a definitive answer, or invalid) or
# were not processed. EXIT_USAGE: bad usage or input, journal held by another run, nothing sent.
#: The server refused the credentials (401/403): the run stopped, nothing more was sent.
EXIT_AUTH: Final = 3
#: Some rows are unresolved (the server may have applied them): run again with the journal.
EXIT_UNRESOLVED: Final = 4
#: The journal could not be written: the run stopped; rows in flight are unresolved.
EXIT_JOURNAL: Final = 5

Halt = Literal["auth", "journal", "unreachable"]


@attrs.define
class Summary:
    """Filled in as results arrive; ``exit_status`` is what the command returns."""

    total: int = 0
    invalid: int = 0
    outcomes: Counter[str] = attrs.field(factory=Counter)
    errors: Counter[str] = attrs.field(factory=Counter)
    unprocessed: int = 0
    adopted: int = 0
    resumed: int = 0
    #: Unresolved creates that match several sessions: only a person can say which is theirs.
    ambiguous: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    halted: Halt | None = None
    halt_reason: str = ""
    dry_run: bool = False
    #: The run kept a journal it can be resumed with (``--journal``).
    journalled: bool = False
    #: The client's rate limiter at the end: ceiling, the rate it learned, 429s, time waited.
    limiter: str = ""
    #: Answers the server sent this run (any status), and requests that got none.
    answers: int = 0
    unanswered: int = 0
    files: dict[str, Path] = attrs.field(factory=dict)
    _latency: HdrHistogram = attrs.field(factory=lambda: HdrHistogram(1, 3_600_000_000, 3))

    def add(self, result: Result) -> None:
        self.outcomes[result.outcome] += 1
        self.adopted += result.adopted
        self.resumed += result.resumed
        self.ambiguous += result.outcome == "unresolved" and len(result.candidates) > 1
        if result.outcome != "ok":
            self.errors[self._kind(result)] += 1
        if result.latency_ms is not None:
            self._latency.record_value(max(1, round(result.latency_ms * 1000)))

    def _advice(self) -> str:
        """What to do after a stop, or with rows unresolved."""
        if self.journalled:
            return "run again with the same --journal to resume"
        if not self.outcomes["unresolved"]:
            return "there was no --journal: the unprocessed rows were never sent; run that file"
        return (
            "there was no --journal: run the unprocessed file again, and the unresolved one"
            " only after checking those rows' sessions at the server"
        )

    @staticmethod
    def _kind(result: Result) -> str:
        """``400``, ``404``..., ``invalid`` (never sent), ``unresolved``, or the failure's name."""
        if result.outcome == "unresolved":
            return "unresolved"
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
        sent = self.done - self.resumed
        return sent / self.elapsed if self.elapsed else 0.0

    def latency_ms(self) -> dict[str, float]:
        if not self._latency.get_total_count():
            return {}
        values = self._latency.get_percentile_to_value_dict([50.0, 90.0, 99.0])
        return {f"p{p:g}": values[p] / 1000 for p in (50.0, 90.0, 99.0)}

    @property
    def exit_status(self) -> int:
        if self.dry_run:
            return EXIT_FAILED if self.invalid else EXIT_OK
        if self.halted == "journal":
            return EXIT_JOURNAL
        if self.halted == "auth":
            return EXIT_AUTH
        if self.halted == "unreachable":
            return EXIT_UNREACHABLE
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.outcomes["unresolved"]:
            return EXIT_UNRESOLVED
        return EXIT_FAILED if self.outcomes["failed"] + self.unprocessed else EXIT_OK

    def format(self) -> str:
        if self.dry_run:
            verdict = "all valid" if not self.invalid else f"{self.invalid} invalid"
            return f"dry run: {self.total} rows checked, {verdict}; nothing was sent"
        counts = ", ".join(f"{self.outcomes[k]} {k}" for k in ("ok", "failed", "unresolved"))
        notes = [f"{self.unprocessed} unprocessed"] if self.unprocessed else []
        if self.outcomes["skipped"]:  # create --skip-active
            notes.append(f"{self.outcomes['skipped']} skipped (the pair has an active session)")
        if self.resumed:
            notes.append(f"{self.resumed} concluded by an earlier run")
        if self.adopted:
            notes.append(f"{self.adopted} created sessions found after a lost answer")
        lines = [
            f"{self.done} of {self.total} rows: {counts}" + "".join(f"; {note}" for note in notes),
            f"{self.rate:.1f} rows/s over {self.elapsed:.1f} s",
        ]
        if latency := self.latency_ms():
            lines.append(
                "time per row (rate-limit wait included) "
                + "  ".join(f"{k} {v:.1f} ms" for k, v in latency.items())
            )
        if self.elapsed:
            lost = f"; {self.unanswered} requests got none" if self.unanswered else ""
            lines.append(f"answers: {self.answers} ({self.answers / self.elapsed:.1f}/s){lost}")
        if self.limiter:
            lines.append(f"rate limit: {self.limiter}")
        if self.errors:
            lines.append("errors: " + ", ".join(f"{k} x{v}" for k, v in self.errors.most_common()))
        lines += [f"{name}: {path}" for name, path in self.files.items()]
        if self.halted:
            lines.append(f"stopped: {self.halt_reason}")
        elif self.interrupted:
            lines.append("interrupted before the end")
        if self.ambiguous and self.journalled:
            rows = "row matches" if self.ambiguous == 1 else "rows match"
            lines.append(
                f"{self.ambiguous} unresolved {rows} several sessions (the results name them):"
                " say which with masking-async resolve"
                " ROW --journal J --session UUID, or --not-applied"
            )
        if self.interrupted or self.halted or self.outcomes["unresolved"]:
            lines.append(self._advice())
        return "\n".join(lines)
