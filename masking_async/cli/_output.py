"""Where commands write: output paths checked before any work, and sessions as CSV or JSON Lines.

A session file is what ``list`` writes and what ``expire --dry-run`` writes; both can be fed back
to ``expire`` and ``update`` (see ``batch.sources.unused_columns``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import IO, Final

import attrs

from masking_async.cli._errors import UsageError
from masking_async.models import Session

__all__ = ["RESULT_SUFFIXES", "SESSION_COLUMNS", "SessionWriter", "check_out", "plural"]

#: The columns of a session file, in order.
SESSION_COLUMNS: Final = (
    "session_uuid",
    "status",
    "first_party",
    "second_party",
    "virtual_number",
    "created_time",
    "expiry_time",
    "duration",
    "subaccount",
)
#: What each output extension means.
RESULT_SUFFIXES: Final = (".jsonl", ".csv")


def check_out(path: Path | None, option: str, suffixes: tuple[str, ...]) -> Path | None:
    """``path`` if a file can be written there with a known format, else a UsageError."""
    if path is None:
        return None
    if path.suffix.lower() not in suffixes:
        raise UsageError(
            f"{option} {path}: unknown extension {path.suffix or '(none)'!r};"
            f" use {' or '.join(suffixes)}"
        )
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; name a file")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: folder {folder} does not exist")
    return path


class SessionWriter:
    """Sessions to ``path`` (CSV for ``.csv``, else JSON Lines) or to stdout as JSON Lines."""

    def __init__(self, path: Path | None, columns: tuple[str, ...] = SESSION_COLUMNS) -> None:
        self.path, self.columns = path, columns
        self.count = 0
        self._handle: IO[str] = path.open("w", encoding="utf-8", newline="") if path else sys.stdout
        self._csv: csv.DictWriter[str] | None = None
        if path is not None and path.suffix.lower() == ".csv":
            self._csv = csv.DictWriter(self._handle, columns)
            self._csv.writeheader()

    def write(self, session: Session) -> None:
        data = attrs.asdict(session, recurse=False)
        row = {name: data.get(name) for name in self.columns}
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self._handle.write(json.dumps(row, default=str) + "\n")
        self.count += 1

    def close(self) -> None:
        if self.path is not None:
            self._handle.close()
        else:
            self._handle.flush()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def plural(count: int, word: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
