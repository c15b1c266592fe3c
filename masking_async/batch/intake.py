"""The rows coming in: read and checked once, recorded in the journal, refused if they changed.

A file is read once (pass one, in a worker thread): every row is checked, counted and recorded,
so a malformed file stops the run before anything is sent and a resume refuses rows that differ
from what the journal recorded. The run then streams the journal's rows in input order. Mappings
given from Python are keyed by the caller and recorded as they come.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sized
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

from masking_async.batch.columns import ColumnError, Columns
from masking_async.batch.journal import Journal, JournalEntry, row_digest
from masking_async.batch.options import BatchOptions
from masking_async.batch.rows import Task, to_task
from masking_async.batch.rowstate import State
from masking_async.batch.sources import (
    COMPRESSED_SUFFIXES,
    STDIN,
    Format,
    Row,
    SourceError,
    compression,
    csv_header,
    read_rows,
    unused_columns,
)
from masking_async.batch.summary import Summary

__all__ = ["Item", "Scanned", "file_items", "mapping_items", "scan"]


@attrs.frozen
class Item:
    """One row on its way to a worker: what the journal knows, the checked task, any refusal."""

    entry: JournalEntry
    task: Task
    problem: str | None = None


@attrs.frozen
class Scanned:
    """What pass one found: how many rows, those that differ from the journal's, the CSV
    header (to write rows back in the input's columns), the columns set aside, and how the
    file's columns map to the API's names."""

    count: int
    changed: Mapping[str, JournalEntry]
    columns: list[str] | None
    ignore: frozenset[str]
    plan: Columns = attrs.field(factory=Columns)


@attrs.define
class _Reading:
    """What the first look at the columns decides, for the rows read after it."""

    path: Path
    fmt: Format
    options: BatchOptions
    report: Callable[[str], None]
    columns: list[str] | None = None
    ignore: frozenset[str] = frozenset()
    plan: Columns = attrs.field(factory=Columns)

    def __call__(self, names: list[str]) -> None:
        op = self.options.op
        try:
            self.plan = Columns.plan(names, self.options.columns, op, header=self.fmt == "csv")
        except ColumnError as exc:
            raise SourceError(self.path, 1 if self.fmt == "csv" else None, str(exc)) from None
        if self.fmt == "csv":
            self.columns = names
        named = [self.plan.rename.get(name, name) for name in names]
        self.ignore = frozenset(unused_columns(op, named))
        if self.ignore:
            ignored = ", ".join(name for name in named if name in self.ignore)
            self.report(f"note: columns {ignored} are not used by {op}; ignored")
        if carried := self.plan.carried:
            self.report(
                f"note: {'columns' if len(carried) > 1 else 'column'} {', '.join(carried)}"
                f" {'are not API parameters' if len(carried) > 1 else 'is not an API parameter'};"
                " carried through to the results untouched"
            )

    def task(self, row: Row) -> Task:
        return to_task(
            row,
            self.options.op,
            text_cells=self.fmt == "csv",
            ignore=self.ignore,
            columns=self.plan,
            region=self.options.default_region,
        )


def scan(
    path: Path,
    fmt: Format,
    options: BatchOptions,
    journal: Journal | None,
    summary: Summary,
    report: Callable[[str], None],
) -> Scanned:
    """Pass one (a worker thread): read, check and record every row, reading the input once."""
    reading = _Reading(path, fmt, options, report)
    if (found := compression(path)) and path.suffix.lower() not in COMPRESSED_SUFFIXES:
        report(f"note: {path} is {found}-compressed (recognised by its first bytes); reading it")
    meta = {
        "source": str(path if path == STDIN else path.resolve()),
        "format": fmt,
        "command": options.op or "run",
        "maps": json.dumps(dict(options.columns)),
        "default_region": options.default_region or "",
    }

    def rows() -> Iterable[JournalEntry]:
        for row in read_rows(path, fmt, delimiter=options.delimiter, on_columns=reading):
            task = reading.task(row)
            summary.total += 1
            if not task.valid:
                summary.invalid += 1
                for violation in task.violations:
                    if violation.field not in reading.plan.missing:  # said once, below
                        report(f"{path}: line {row.line}: {violation} (row {row.record})")
            yield _fresh(str(row.record), row.record, row, task)
        if reading.plan.missing:
            raise SourceError(path, None, reading.plan.missing_message())

    def scanned(changed: Mapping[str, JournalEntry]) -> Scanned:
        return Scanned(summary.total, changed, reading.columns, reading.ignore, reading.plan)

    if journal is None:
        for _ in rows():
            pass
        return scanned({})

    # The columns rows are written back in, for `report`; standard input runs keep no journal.
    header = csv_header(path, options.delimiter) if fmt == "csv" and path != STDIN else None
    meta["columns"] = json.dumps(header)
    changed = journal.register(rows(), meta, keep=lambda: not (options.strict and summary.invalid))
    for key in list(changed)[:20]:
        report(f"{path}: row {key} {_changed_note(journal, key, options.retry_failed)}")
    return scanned(changed)


def _changed_note(journal: Journal, key: str, retry_failed: bool) -> str:
    """Why a changed row is sent or not: only a row that ended ``failed`` was surely not
    applied, so only it may be corrected in place (fix in place, with ``--retry-failed``)."""
    known = journal.entry(key)
    if known is not None and known.state == "failed":
        if retry_failed:
            return "was corrected since it failed; the corrected row is sent"
        return "was changed since it failed; --retry-failed sends the corrected row"
    return f"differs from the input {journal.path} recorded; not run"


def _fresh(key: str, ordinal: int, row: Row, task: Task) -> JournalEntry:
    """A row as the journal first records it; its digest is of what would be sent, so the same
    rows given again as JSON instead of CSV are the same rows."""
    invalid = "; ".join(str(v) for v in task.violations) or None
    meaning = {"op": task.op, "ref": task.ref, "session_uuid": task.session_uuid, **task.params}
    return JournalEntry(
        key=key,
        ordinal=ordinal,
        line=row.line,
        digest=row_digest(row.fields if invalid else meaning),
        raw=row.fields,
        op=task.op,
        state="failed" if invalid else "pending",
        error=invalid,
    )


async def file_items(
    journal: Journal,
    op: str | None,
    fmt: Format,
    scanned: Scanned,
    region: str | None = None,
    retry_failed: bool = False,
) -> AsyncIterator[Item]:
    """The input's rows as the journal holds them, in order; rows that differ are refused,
    except a row that ended ``failed`` when ``retry_failed``: its corrected content is run.

    Nothing in here awaits, so a stop cancelled at its reader's await can never close it halfway:
    the run then reads the rest of it to report every row it did not run.
    """

    def item(entry: JournalEntry) -> Item:
        row = Row(entry.line, entry.raw)
        task = to_task(
            row,
            op,
            text_cells=fmt == "csv",
            ignore=scanned.ignore,
            columns=scanned.plan,
            region=region,
        )
        return Item(entry, task)

    def refused(now: JournalEntry, state: State) -> Item:
        # Reported with the input's content, and kept out of the failed file if an earlier
        # version may have been applied (running that file again would apply it twice).
        problem = (
            "changed since it failed; --retry-failed sends the corrected row"
            if state == "failed"
            else "differs from the row the journal recorded; run it with a new journal"
        )
        return attrs.evolve(item(attrs.evolve(now, state=state)), problem=problem)

    seen: set[str] = set()
    for entry in journal.entries():
        if entry.ordinal > scanned.count:
            break  # the input no longer has this row: it is not this run's
        now = scanned.changed.get(entry.key)
        if now is None:
            yield item(entry)
        elif entry.state == "failed" and retry_failed:  # fixed in place: never applied before
            yield item(attrs.evolve(now, state="failed", attempts=entry.attempts))
        else:
            yield refused(now, entry.state)
        seen.add(entry.key)
    for key, now in scanned.changed.items():  # rows the journal never had
        if key not in seen:
            yield refused(now, "pending")


async def mapping_items(
    source: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
    journal: Journal,
    options: BatchOptions,
    summary: Summary,
) -> AsyncIterator[Item]:
    async def each() -> AsyncIterator[Mapping[str, Any]]:
        if isinstance(source, AsyncIterable):
            async for mapping in source:
                yield mapping
        else:
            for mapping in source:
                yield mapping
                await anyio.lowlevel.checkpoint()

    seen: set[str] = set()
    ordinal = 0
    sized = isinstance(source, Sized)
    if sized:
        summary.total = len(source)  # type: ignore[arg-type]
    async for mapping in each():
        ordinal += 1
        summary.total += not sized
        fields = {k: v for k, v in mapping.items() if k != options.key_field}
        key = mapping.get(options.key_field)
        row = Row(ordinal, fields)
        task = to_task(row, options.op, text_cells=False, region=options.default_region)
        problem = None
        if key is None or str(key) == "":
            key, problem = f"#{ordinal}", f"{options.key_field}: every row needs a unique key"
        elif str(key) in seen:
            problem = f"{options.key_field}: {key!r} repeats an earlier row's key"
        key = str(key)
        seen.add(key)
        fresh = _fresh(key, ordinal, row, task)
        # A repeated key is reported as itself, never with the journal's record of the first.
        entry = None if problem is not None else journal.entry(key)
        if entry is None:
            entry = fresh
        elif entry.digest != fresh.digest and problem is None:
            if entry.state == "failed" and options.retry_failed:  # fixed in place
                entry = attrs.evolve(fresh, state="failed", attempts=entry.attempts)
            else:
                problem = (
                    "changed since the journal recorded it; give it a new key or a new journal"
                )
        if problem is not None or not task.valid:
            summary.invalid += 1
        yield Item(entry, task, problem)
