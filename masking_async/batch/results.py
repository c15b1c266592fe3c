"""What a run writes: one result per row, and the rows that did not end ok, in the input's format.

The row files hold the rows as the input had them (same format, same columns) plus an ``error``
column with the reason, which the reader ignores, so fixing a few cells and running the file
again is all a retry takes. Each result line is written and flushed only after the row's outcome
is committed to the journal, so the results never run ahead of it, and lag it by nothing a crash
can lose that ``masking-async report`` cannot rebuild. Credentials never reach these files.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final

import attrs

from masking_async.batch.journal import JournalEntry
from masking_async.batch.sources import COMPRESSED_SUFFIXES, REASON_COLUMN, STDIN, Format
from masking_async.errors import BatchUsageError, OutputError

__all__ = [
    "RESULT_FIELDS",
    "BatchUsageError",
    "OutputError",
    "Result",
    "ResultWriter",
    "RowWriter",
    "default_results",
    "output_paths",
    "refuse_overlap",
    "result_of",
]


def _create(path: Path) -> IO[str]:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None


RESULT_FIELDS: Final = (
    "key",
    "line",
    "ref",
    "op",
    "outcome",
    "session_uuid",
    "virtual_number",
    "status",
    "error",
    "attempts",
    "adopted",
    "resumed",
    "candidates",
    "latency_ms",
)


@attrs.frozen
class Result:
    """The outcome of one row: ``ok``, ``failed`` or ``unresolved`` (may have been applied).

    ``resumed`` means an earlier run reached this outcome; ``adopted`` that a create's session
    was found by a lookup after its answer was lost; ``candidates`` names the sessions that made
    a lookup ambiguous.
    """

    key: str
    line: int
    ref: str | None
    op: str
    outcome: str
    session_uuid: str | None = None
    virtual_number: str | None = None
    status: int | None = None
    error: str | None = None
    attempts: int = 0
    adopted: bool = False
    resumed: bool = False
    candidates: tuple[str, ...] = ()
    latency_ms: float | None = None
    #: The parties as sent and the input's own columns (``order_id``...), to join results back.
    shown: Mapping[str, Any] = attrs.field(factory=dict)


def result_of(
    entry: JournalEntry,
    outcome: str,
    *,
    ref: str | None,
    op: str,
    session_uuid: str | None = None,
    error: str | None = None,
    resumed: bool = False,
    latency_ms: float | None = None,
    shown: Mapping[str, Any] | None = None,
) -> Result:
    """A row's result as its journal entry stands (``session_uuid``: the row's own, if any)."""
    return Result(
        key=entry.key,
        line=entry.line,
        ref=ref,
        op=op,
        outcome=outcome,
        session_uuid=entry.session_uuid or session_uuid,
        virtual_number=entry.virtual_number,
        status=entry.status,
        error=(error or entry.error) if outcome != "ok" else None,
        attempts=entry.attempts,
        adopted=entry.adopted,
        resumed=resumed,
        candidates=entry.candidates,
        latency_ms=latency_ms,
        shown=shown or {},
    )


#: Seconds a written result may wait in the buffer before it is flushed: a reader (``tail -f``)
#: sees it within this, and a row costs no system call of its own. What a crash loses of the
#: buffer, ``masking-async report`` rebuilds from the journal.
FLUSH_EVERY: Final = 0.5


class ResultWriter:
    """Results as JSON Lines (``.jsonl``/``.json``) or CSV (``.csv``), flushed as they come
    (at most :data:`FLUSH_EVERY` s later).

    Each result's ``shown`` fields follow its own. A CSV's header takes them from the first
    result (a CSV input gives every row the same columns), so it is written with that row.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = _create(path)
        self._is_csv = path.suffix.lower() == ".csv"
        self._csv: csv.DictWriter[str] | None = None
        self._flushed = time.monotonic()

    def _csv_writer(self, shown: Mapping[str, Any]) -> csv.DictWriter[str]:
        if self._csv is None:
            self._csv = csv.DictWriter(self._handle, [*RESULT_FIELDS, *shown], restval="")
            self._csv.writeheader()
        return self._csv

    def write(self, result: Result) -> None:
        data = {name: getattr(result, name) for name in RESULT_FIELDS}
        data.update(result.shown)
        if self._is_csv:
            data["candidates"] = " ".join(result.candidates)
            row = {k: "" if v is None else v for k, v in data.items()}
            writer = self._csv_writer(result.shown)
            writer.writerow({k: v for k, v in row.items() if k in writer.fieldnames})
        else:
            self._handle.write(json.dumps(data) + "\n")
        if (now := time.monotonic()) - self._flushed >= FLUSH_EVERY:
            self._handle.flush()
            self._flushed = now

    def close(self) -> None:
        if self._is_csv:
            self._csv_writer({})  # no row at all: the header still says what the file is
        self._handle.close()


class RowWriter:
    """Input rows written back in the input's own format; the file appears with its first row.

    A file of that name left by an earlier run is removed at once, so no row file outlives the
    run that wrote it.
    """

    def __init__(self, path: Path, fmt: Format, columns: list[str] | None) -> None:
        self.path, self._fmt = path, fmt
        self._columns = None if columns is None else [*columns, REASON_COLUMN]
        self._handle: IO[str] | None = None
        self._csv: csv.DictWriter[str] | None = None
        self.count = 0
        path.unlink(missing_ok=True)

    def write(self, raw: Mapping[str, Any], reason: str | None = None) -> None:
        raw = {**raw, REASON_COLUMN: reason or ""}
        if self._handle is None:
            self._handle = _create(self.path)
            if self._fmt == "csv":
                self._csv = csv.DictWriter(
                    self._handle, self._columns or list(raw), extrasaction="ignore"
                )
                self._csv.writeheader()
            elif self._fmt == "json":
                self._handle.write("[\n")
        if self._csv is not None:
            self._csv.writerow(raw)
        elif self._fmt == "json":
            self._handle.write((",\n" if self.count else "") + json.dumps(raw))
        else:
            self._handle.write(json.dumps(raw) + "\n")
        self.count += 1
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            if self._fmt == "json":
                self._handle.write("\n]\n")
            self._handle.close()


def default_results(source: Path) -> Path:
    """Beside the input, its name without extensions (``.csv``, ``.csv.gz``) + .results.jsonl;
    ``stdin.results.jsonl`` in the current folder for standard input."""
    if source == STDIN:
        return Path("stdin.results.jsonl")
    stem = Path(source.stem) if source.suffix.lower() in COMPRESSED_SUFFIXES else source
    return source.with_name(f"{stem.stem}.results.jsonl")


def output_paths(base: Path, out: Path | None, suffix: str) -> dict[str, Path]:
    results = out or default_results(base)
    stem = results.with_suffix("")
    return {
        "results": results,
        "failed rows": stem.with_name(f"{stem.name}.failed{suffix}"),
        "unresolved rows": stem.with_name(f"{stem.name}.unresolved{suffix}"),
        "unprocessed rows": stem.with_name(f"{stem.name}.unprocessed{suffix}"),
    }


def refuse_overlap(outputs: Mapping[str, Path], protected: Mapping[str, Path | None]) -> None:
    """No output may be the input or the journal: writing it would destroy what we read."""
    for role, path in protected.items():
        if path is None:
            continue
        for name, output in outputs.items():
            same = output.exists() and path.exists() and output.samefile(path)
            if same or output.resolve() == path.resolve():
                raise BatchUsageError(
                    f"the {name} file {output} is the {role}: writing it would destroy it;"
                    " choose another --out"
                )
