"""The journal: a SQLite file (WAL) holding every row of a run and where it is in its life.

It is the one source of truth for a batch: results, failed, unresolved and unprocessed files can
be rebuilt from it alone (``masking-async report``). Each row is keyed by its ordinal in the input
(or the caller's key) and stored with a digest of its content, so a resume against an edited file
refuses the rows that changed. States follow :mod:`masking_async.batch.rowstate`; every change is
*committed* (on disk) before the engine acts on it: ``sending`` before the request leaves, the
outcome before its result line is written.

Writes go through one writer task in batches (group commit): it lives in the task group of
:meth:`Journal.writing`, takes the commits from a memory stream and writes each batch in a worker
thread (``anyio.to_thread``), so the event loop never waits on the disk, and a thousand rows in
flight cost one commit, not a thousand. (A temporary journal, ``synchronous=OFF``, never waits on
the disk: its batches are written in place, saving the thread hop, and nothing waits for them.)
A write that fails stops the writer for good and fails every waiting and later commit with
:class:`JournalError`, so a run stops loudly instead of hanging. An OS lock (``flock``) held
for the journal's whole life makes a second run on the same journal fail at once; the lock dies
with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio brings along
    from exceptiongroup import BaseExceptionGroup

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from masking_async.batch.rowstate import State
from masking_async.errors import JournalError, JournalLocked

__all__ = ["Journal", "JournalEntry", "JournalError", "JournalLocked", "row_digest"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    ordinal INTEGER NOT NULL,
    line INTEGER NOT NULL,
    digest TEXT NOT NULL,
    raw TEXT NOT NULL,
    op TEXT NOT NULL,
    state TEXT NOT NULL,
    sent_at REAL,
    lookup_at REAL,
    session_uuid TEXT,
    virtual_number TEXT,
    status INTEGER,
    error TEXT,
    candidates TEXT,
    adopted INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rows_by_ordinal ON rows (ordinal, key);
CREATE INDEX IF NOT EXISTS rows_by_session ON rows (session_uuid);
"""
_COLUMNS: Final = (
    "key, ordinal, line, digest, raw, op, state, sent_at, lookup_at, session_uuid,"
    " virtual_number, status, error, candidates, adopted, attempts"
)
#: ``PRAGMA user_version`` of a journal that records when each request left (``sent_at`` of a
#: ``sending`` row); older journals recorded when the row was queued.
_EXACT_DEPARTURES: Final = 2
_BATCH: Final = 512
_BUSY_MS: Final = 5000
#: What a journal opened from an input remembers of it, to write its rows back the same way.
META_KEYS: Final = ("source", "format", "columns", "command")


@attrs.frozen
class JournalEntry:
    """A row as the journal knows it."""

    key: str
    ordinal: int
    line: int
    digest: str
    raw: dict[str, Any]
    op: str
    state: State
    sent_at: float | None = None
    #: When a lookup for this row's create becomes conclusive (the sender's timeout + settle).
    lookup_at: float | None = None
    session_uuid: str | None = None
    virtual_number: str | None = None
    status: int | None = None
    error: str | None = None
    candidates: tuple[str, ...] = ()
    adopted: bool = False
    attempts: int = 0


def row_digest(fields: Mapping[str, Any]) -> str:
    """A digest of a row's content, independent of key order and of how the file spelled it."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _entry(found: tuple[Any, ...]) -> JournalEntry:
    (key, ordinal, line, digest, raw, op, state, sent_at, lookup_at, uuid, number) = found[:11]
    status, error, cands, adopted, attempts = found[11:]
    return JournalEntry(
        key=key,
        ordinal=ordinal,
        line=line,
        digest=digest,
        raw=json.loads(raw),
        op=op,
        state=state,
        sent_at=sent_at,
        lookup_at=lookup_at,
        session_uuid=uuid,
        virtual_number=number,
        status=status,
        error=error,
        candidates=tuple(json.loads(cands)) if cands else (),
        adopted=bool(adopted),
        attempts=attempts,
    )


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=_BUSY_MS / 1000, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    return connection


def _check_schema(path: Path) -> None:
    """Refuse, reading only, a file that does not hold a journal's tables."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {name for (name,) in found.fetchall()}
    finally:
        connection.close()
    if not {"meta", "rows"} <= tables:
        raise JournalError(f"{path}: not a journal (it has no meta and rows tables)")


@attrs.define(eq=False)
class _Commit:
    """One row's write, and its fate for the one who waits (a durable journal's committer):
    ``done`` is set once it is on disk (or ``error`` says why it never will be)."""

    statement: str
    values: tuple[Any, ...]
    done: anyio.Event | None = None
    error: str | None = None


class Journal:
    """Open with :meth:`open` or :meth:`temporary`; commit inside :meth:`writing`; :meth:`close`."""

    def __init__(self, path: Path, lock: int | None, *, durable: bool) -> None:
        self.path = path
        self._lock = lock
        #: Kept for a resume (``--journal``): commits wait for the disk, departures are recorded.
        self.durable = durable
        self._reader = _connect(path)
        (version,) = self._reader.execute("PRAGMA user_version").fetchone()
        #: Does it record when each request left (not when its row was queued)?
        self.exact_departures = version >= _EXACT_DEPARTURES
        self._commits: MemoryObjectSendStream[_Commit] | None = None
        self._failure: str | None = None

    @classmethod
    def open(cls, path: Path, *, durable: bool = True, create: bool = True) -> Journal:
        """Open (or, with ``create``, create) ``path`` and lock it.

        :class:`JournalLocked` if another run has it. Without ``create`` the file must already
        be a journal, checked read-only first, so a file that is not one is left untouched.
        """
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            raise JournalError(f"{path}: no such journal") from None
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the journal ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLocked(f"{path}: another run is using this journal") from None
        try:
            if not create:
                _check_schema(path)
            connection = _connect(path)
            found = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='rows'"
            fresh = connection.execute(found).fetchone() is None
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            if fresh:
                connection.execute(f"PRAGMA user_version={_EXACT_DEPARTURES}")
            connection.close()
        except sqlite3.DatabaseError as exc:
            os.close(fd)
            raise JournalError(f"{path}: not a usable journal ({exc})") from None
        except JournalError:
            os.close(fd)
            raise
        return cls(path, fd, durable=durable)

    # -- reading (event loop thread, or a worker thread before start) -----------------------

    def meta(self) -> dict[str, str]:
        return dict(self._reader.execute("SELECT key, value FROM meta").fetchall())

    def entry(self, key: str) -> JournalEntry | None:
        found = self._reader.execute(f"SELECT {_COLUMNS} FROM rows WHERE key = ?", (key,))
        row = found.fetchone()
        return _entry(row) if row else None

    def entries(self) -> Iterator[JournalEntry]:
        """Every row in input order, streamed a page at a time.

        Each page is its own short read, so no snapshot stays open for the whole run (an open
        one would stop SQLite from ever checkpointing the write-ahead log, which would then grow
        with every commit of a long run).
        """
        after: tuple[int, str] = (0, "")
        while True:
            page = self._reader.execute(
                f"SELECT {_COLUMNS} FROM rows WHERE (ordinal, key) > (?, ?)"
                " ORDER BY ordinal, key LIMIT 256",
                after,
            ).fetchall()
            if not page:
                return
            after = (page[-1][1], page[-1][0])
            yield from map(_entry, page)

    def claimed_elsewhere(self, session_uuid: str, key: str) -> bool:
        """Is ``session_uuid`` another row's session, or named to another row by the server?"""
        found = self._reader.execute(
            "SELECT 1 FROM rows WHERE session_uuid = ? AND key != ? AND op = 'create' LIMIT 1",
            (session_uuid, key),
        )
        return found.fetchone() is not None

    def register(
        self,
        rows: Iterable[JournalEntry],
        meta: Mapping[str, str],
        *,
        keep: Callable[[], bool] = lambda: True,
    ) -> dict[str, JournalEntry]:
        """Record the input's rows, in one transaction (call before :meth:`start`).

        A new journal takes every row. A journal that already holds an input takes none: it
        returns the rows that differ from what it recorded (content changed, or a row it never
        had), by key, so the run refuses them instead of creating a moved row twice. Nothing is
        kept when ``keep()`` is false once the rows are read (``strict`` refused the file).
        """
        changed: dict[str, JournalEntry] = {}
        connection = _connect(self.path)
        try:
            with connection:
                known = connection.execute("SELECT value FROM meta WHERE key='source'").fetchone()
                fresh = known is None
                if not fresh and "source" in meta and known[0] != meta["source"]:
                    raise JournalError(
                        f"{self.path} records a run of {known[0]}; run that file with it,"
                        " or use a new journal"
                    )
                for name, value in meta.items():
                    connection.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (name, value))
                for row in rows:
                    if fresh:
                        connection.execute(*_upsert(row))
                        continue
                    known = connection.execute(
                        "SELECT digest FROM rows WHERE key = ?", (row.key,)
                    ).fetchone()
                    if known is None or known[0] != row.digest:
                        changed[row.key] = row
                if not keep():
                    connection.rollback()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot record the input ({exc})") from None
        finally:
            connection.close()
        return changed

    # -- writing (through the writer task) ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Accept :meth:`commit` inside; on leaving, every commit made inside is on disk.

        The writer is a task of this block's own task group: it ends when the block does, after
        the last batch is written, and never outlives it.
        """
        send, receive = anyio.create_memory_object_stream[_Commit](math.inf)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._write, receive)
                self._commits = send
                try:
                    yield
                finally:
                    self._commits = None
                    send.close()
        except BaseExceptionGroup as failed:
            # The writer never raises (a failed write is recorded): what came out is the
            # block's own error, given back as it was raised.
            if len(failed.exceptions) == 1:
                raise failed.exceptions[0] from None
            raise

    async def commit(self, entry: JournalEntry) -> None:
        """Store ``entry`` (a row's whole record); returns once it is on disk.

        A temporary journal (:meth:`temporary`) returns at once: no crash can leave it to a
        resume, so nothing waits for its disk, and the writer keeps its order.
        """
        if self._failure is not None:
            raise JournalError(self._failure)
        assert self._commits is not None, "commit inside journal.writing()"
        if not self.durable:
            self._commits.send_nowait(_Commit(*_upsert(entry)))
            return
        done = anyio.Event()
        write = _Commit(*_upsert(entry), done=done)
        self._commits.send_nowait(write)
        await done.wait()
        if write.error is not None:
            raise JournalError(write.error)

    def close(self) -> None:
        """Release the reader and the lock (after :meth:`writing`, if it was written)."""
        self._reader.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def _write(self, commits: MemoryObjectReceiveStream[_Commit]) -> None:
        """The writer: batches of commits, each in one transaction in a worker thread."""
        async with commits:
            try:
                connection = await anyio.to_thread.run_sync(self._writer_connection)
            except sqlite3.Error as exc:
                self._failure = f"{self.path}: cannot write the journal ({exc})"
                connection = None
            async for first in commits:
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        batch.append(commits.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):  # the rest comes later, or never
                        break
                # A batch that has begun is written and its waiters told, whatever is cancelled.
                with anyio.CancelScope(shield=True):
                    if connection is None or self._failure is not None:
                        pass
                    elif self.durable:  # a WAL checkpoint may wait on the disk: not here
                        await anyio.to_thread.run_sync(self._write_batch, connection, batch)
                    else:  # synchronous=OFF: no write waits on the disk, and no thread hop
                        self._write_batch(connection, batch)
                for write in batch:
                    if write.done is not None:
                        write.error = self._failure
                        write.done.set()
            if connection is not None:
                connection.close()

    def _writer_connection(self) -> sqlite3.Connection:
        connection = _connect(self.path)
        # WAL + NORMAL: a commit survives the process being killed (kill -9); only a power
        # loss can undo the last few. That is the failure a batch run must survive.
        connection.execute(f"PRAGMA synchronous={'NORMAL' if self.durable else 'OFF'}")
        return connection

    def _write_batch(self, connection: sqlite3.Connection, batch: list[_Commit]) -> None:
        """One transaction (a worker thread); a failure fails this and every later commit."""
        try:
            with connection:
                for write in batch:
                    connection.execute(write.statement, write.values)
        except sqlite3.Error as exc:
            self._failure = f"{self.path}: a journal write failed ({exc})"

    @classmethod
    def temporary(cls, folder: Path) -> Journal:
        """A journal for a run that asked for none: same machine, no fsync, deleted at close."""
        return cls.open(folder / "run.journal", durable=False)


def _upsert(entry: JournalEntry) -> tuple[str, tuple[Any, ...]]:
    return (
        f"INSERT OR REPLACE INTO rows ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
        (
            entry.key,
            entry.ordinal,
            entry.line,
            entry.digest,
            json.dumps(entry.raw, default=str),
            entry.op,
            entry.state,
            entry.sent_at,
            entry.lookup_at,
            entry.session_uuid,
            entry.virtual_number,
            entry.status,
            entry.error,
            json.dumps(list(entry.candidates)) if entry.candidates else None,
            int(entry.adopted),
            entry.attempts,
        ),
    )
