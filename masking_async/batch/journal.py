"""The journal: a SQLite file (WAL) that makes a batch run resumable after any crash.

Each row is recorded as ``sending`` — durably, before its request leaves — and as ``done`` or
``retry`` after. On the next run with the same journal, ``done`` rows are skipped, ``retry`` rows
(429, 5xx, no answer) are run again, and ``sending`` rows, whose fate is unknown, are reconciled:
a create is first looked up by its parties at the server. Writes go through one thread in
batches (group commit), so the event loop never waits on the disk and a thousand rows in flight
cost one fsync, not a thousand.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from masking_async.errors import MaskingError

__all__ = ["Journal", "JournalEntry", "JournalError", "fingerprint"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    line INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    op TEXT NOT NULL,
    sent_at REAL,
    session_uuid TEXT,
    virtual_number TEXT,
    outcome TEXT,
    status INTEGER,
    error TEXT
);
"""
_BATCH: Final = 512


class JournalError(MaskingError):
    """The journal cannot be used for this run (another input file, or not a journal)."""


@attrs.frozen
class JournalEntry:
    line: int
    state: str  # sending | done | retry
    op: str
    sent_at: float | None
    session_uuid: str | None
    virtual_number: str | None
    outcome: str | None
    status: int | None
    error: str | None


def fingerprint(path: Path) -> str:
    """Size and SHA-256 of the input, streamed: a journal only resumes the file it started."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.stat().st_size}:{digest.hexdigest()}"


class Journal:
    """Open with :meth:`open`; close with :meth:`close` (flushes everything written)."""

    def __init__(self, path: Path, reader: sqlite3.Connection) -> None:
        self.path = path
        self._reader = reader
        self._queue: queue.Queue[tuple[str, tuple[Any, ...], asyncio.Future[None] | None] | None]
        self._queue = queue.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write, name="journal-writer", daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, path: Path, source_fingerprint: str) -> Journal:
        """Open or create ``path``; refuse a journal that belongs to another input."""
        try:
            connection = sqlite3.connect(path)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            row = connection.execute("SELECT value FROM meta WHERE key='input'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{path}: not a usable journal ({exc})") from None
        if row is None:
            connection.execute("INSERT INTO meta VALUES ('input', ?)", (source_fingerprint,))
            connection.commit()
        elif row[0] != source_fingerprint:
            connection.close()
            raise JournalError(
                f"{path} records a run of a different input file (its size or content changed);"
                " use a new journal, or the original file"
            )
        return cls(path, connection)

    def entry(self, line: int) -> JournalEntry | None:
        """What the journal knew of ``line`` when it was opened or since (read from disk)."""
        found = self._reader.execute(
            "SELECT line, state, op, sent_at, session_uuid, virtual_number, outcome, status, error"
            " FROM rows WHERE line = ?",
            (line,),
        ).fetchone()
        return JournalEntry(*found) if found else None

    async def sending(self, line: int, op: str, sent_at: float) -> None:
        """Record that ``line`` is about to be sent; returns once that is on disk."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(
            (
                "INSERT OR REPLACE INTO rows (line, state, op, sent_at)"
                " VALUES (?, 'sending', ?, ?)",
                (line, op, sent_at),
                future,
            )
        )
        await future

    def finished(
        self,
        line: int,
        *,
        retry: bool,
        outcome: str,
        session_uuid: str | None,
        virtual_number: str | None,
        status: int | None,
        error: str | None,
    ) -> None:
        """Record a row's outcome (no wait: a lost outcome only means one reconciliation)."""
        self._queue.put(
            (
                "UPDATE rows SET state = ?, session_uuid = ?, virtual_number = ?, outcome = ?,"
                " status = ?, error = ? WHERE line = ?",
                (
                    "retry" if retry else "done",
                    session_uuid,
                    virtual_number,
                    outcome,
                    status,
                    error,
                    line,
                ),
                None,
            )
        )

    async def close(self) -> None:
        """Flush every pending write and close; the wait happens off the event loop."""
        self._queue.put(None)
        await anyio.to_thread.run_sync(self._thread.join)
        self._reader.close()

    def _write(self) -> None:
        connection = sqlite3.connect(self.path)
        # WAL + NORMAL: a commit survives the process being killed (kill -9); only a power
        # loss can undo the last few. That is the failure a batch run must survive.
        connection.execute("PRAGMA synchronous=NORMAL")
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            waiting = []
            with connection:
                for item in batch:
                    if item is None:
                        stop = True
                        continue
                    sql, params, future = item
                    connection.execute(sql, params)
                    if future is not None:
                        waiting.append(future)
            for future in waiting:
                self._loop.call_soon_threadsafe(_resolve, future)
        connection.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
