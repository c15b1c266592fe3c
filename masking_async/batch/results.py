"""What a run writes: one result per row, and the failed and unprocessed rows in the input's format.

The failed and unprocessed files hold the rows exactly as the input had them (same format, same
columns), so fixing a few cells and running the file again is all a retry takes. Credentials
never reach these files: results carry ids, statuses and the server's error messages only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any, Final

import attrs

from masking_async.batch.sources import Format

__all__ = ["RESULT_FIELDS", "Result", "ResultWriter", "RowWriter"]

RESULT_FIELDS: Final = (
    "line",
    "ref",
    "op",
    "outcome",
    "session_uuid",
    "virtual_number",
    "status",
    "error",
    "attempts",
    "latency_ms",
)


@attrs.frozen
class Result:
    """The outcome of one row: ``ok``, ``failed`` or ``skipped`` (done by an earlier run)."""

    line: int
    ref: str | None
    op: str
    outcome: str
    session_uuid: str | None = None
    virtual_number: str | None = None
    status: int | None = None
    error: str | None = None
    attempts: int = 0
    latency_ms: float | None = None


class ResultWriter:
    """Results as JSON Lines (``.jsonl``/``.json``) or CSV (``.csv``), flushed as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8", newline="")
        self._csv = None
        if path.suffix.lower() == ".csv":
            self._csv = csv.DictWriter(self._handle, RESULT_FIELDS)
            self._csv.writeheader()

    def write(self, result: Result) -> None:
        data = attrs.asdict(result)
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in data.items()})
        else:
            self._handle.write(json.dumps(data) + "\n")

    def close(self) -> None:
        self._handle.close()


class RowWriter:
    """Input rows written back in the input's own format; the file appears with its first row."""

    def __init__(self, path: Path, fmt: Format, columns: list[str] | None) -> None:
        self.path, self._fmt, self._columns = path, fmt, columns
        self._handle: IO[str] | None = None
        self._csv: csv.DictWriter[str] | None = None
        self.count = 0

    def write(self, raw: dict[str, Any]) -> None:
        if self._handle is None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            if self._fmt == "csv":
                self._csv = csv.DictWriter(self._handle, self._columns or list(raw))
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

    def close(self) -> None:
        if self._handle is not None:
            if self._fmt == "json":
                self._handle.write("\n]\n")
            self._handle.close()
