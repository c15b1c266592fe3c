"""The batch engine: every row to exactly one known outcome, as fast as the account allows.

Each row moves through :mod:`masking_async.batch.rowstate`, every move committed to the journal
(:mod:`.journal`) before the engine acts on it. Rows come in through :mod:`.intake` and are driven
to their outcomes by :mod:`.run`; this module puts the two together for a file, for mappings
from Python, and for ``expire --where``.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

from masking_async.batch.columns import ColumnError, parse_map
from masking_async.batch.intake import Item, file_items, mapping_items, scan
from masking_async.batch.journal import Journal, JournalEntry, JournalError
from masking_async.batch.options import BatchOptions, SessionAPI
from masking_async.batch.results import (
    BatchUsageError,
    Result,
    output_paths,
    refuse_overlap,
)
from masking_async.batch.run import Run
from masking_async.batch.skip import REASON as SKIP_REASON
from masking_async.batch.skip import SKIPPED, active_by_pair, skipping
from masking_async.batch.sources import STDIN, detect_format, row_suffix
from masking_async.batch.summary import Summary
from masking_async.errors import StrictModeError

__all__ = [
    "BatchOptions",
    "BatchUsageError",
    "SessionAPI",
    "StrictModeError",
    "expire_matching",
    "run_batch",
]

Source = Path | Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]


def _report_to_stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


async def run_batch(
    source: Source,
    *,
    client: SessionAPI | None,
    options: BatchOptions,
    stop: anyio.Event | None = None,
    report: Callable[[str], None] = _report_to_stderr,
    on_result: Callable[[Result], None] | None = None,
) -> Summary:
    """Run every row of ``source``; returns the summary (see ``Summary.exit_status``).

    ``source`` is a file (CSV, JSON array, JSON Lines) or an iterable / async iterable of
    mappings, each with a unique ``options.key_field`` that keys it in the journal. Raises
    :class:`SourceError` for a malformed file, :class:`StrictModeError` when ``strict`` finds
    invalid rows, :class:`BatchUsageError` for outputs over the input or journal, and
    :class:`JournalError` for a journal another run holds: in every case before anything is sent.
    """
    if not isinstance(source, Path):
        return await _run_mappings(source, client, options, stop, on_result)
    fmt = detect_format(source, options.format)
    options = attrs.evolve(options, columns=_column_map(options.columns))
    if options.delimiter is not None and fmt != "csv":
        raise BatchUsageError(f"--delimiter is for CSV input; {source} is read as {fmt}")
    if source == STDIN and options.journal is not None:
        raise BatchUsageError(
            "--journal: standard input (-) cannot be read again, so its run cannot be resumed;"
            " save the input to a file to use a journal"
        )
    summary = Summary(dry_run=options.dry_run, journalled=options.journal is not None)
    if options.dry_run:
        await anyio.to_thread.run_sync(
            scan, source, fmt, options, None, summary, report, abandon_on_cancel=True
        )
        return summary
    if client is None:
        raise ValueError("a client is needed unless dry_run is set")
    outputs = output_paths(source, options.out, row_suffix(source, fmt))
    refuse_overlap(
        outputs, {"input": None if source == STDIN else source, "journal": options.journal}
    )
    async with _journal(options) as journal:
        _refuse_other_command(journal, options.op or "run")
        scanned = await anyio.to_thread.run_sync(
            scan, source, fmt, options, journal, summary, report, abandon_on_cancel=True
        )
        if options.strict and summary.invalid:
            raise StrictModeError(
                f"{summary.invalid} of {summary.total} rows are invalid; none sent"
            )
        run = Run(
            client,
            summary,
            journal,
            options,
            outputs,
            fmt,
            scanned.columns,
            on_result,
            stop=stop,
            drain=True,
        )
        items = file_items(
            journal, options.op, fmt, scanned, options.default_region, options.retry_failed
        )
        await run.execute(await _skip_active(items, client, run, options))
    return summary


async def _skip_active(
    items: AsyncIterator[Item], client: SessionAPI, run: Run, options: BatchOptions
) -> AsyncIterator[Item]:
    """With ``skip_active``: one listing first, then creates of pairs it found end skipped."""
    if not options.skip_active:
        return items
    active = await active_by_pair(client)

    def finish(item: Item, entry: JournalEntry) -> None:
        # Run records an outcome in one place (results, summary, hook): skipped rows too.
        run._finish(item, entry, SKIPPED, error=SKIP_REASON)

    return skipping(items, active, finish)


def _column_map(columns: Mapping[str, str]) -> dict[str, str]:
    """``BatchOptions.columns`` as the column matcher keys it; a bad entry is a usage error."""
    try:
        return parse_map(f"{column}={target}" for column, target in columns.items())
    except ColumnError as exc:
        raise BatchUsageError(str(exc)) from None


def _refuse_other_command(journal: Journal, command: str) -> None:
    """A journal resumes only the command that made it: under another, every row would differ.

    Journals written before the command was recorded carry none and are taken as they are.
    """
    recorded = journal.meta().get("command")
    if recorded is not None and recorded != command:
        raise JournalError(
            f"{journal.path} records a {recorded} run; run it with {recorded}, or use a new journal"
        )


@asynccontextmanager
async def _journal(options: BatchOptions) -> AsyncIterator[Journal]:
    """The run's journal: the one asked for, else a temporary one deleted at the end."""
    with tempfile.TemporaryDirectory(prefix="masking-async-") as folder:
        journal = (
            Journal.open(options.journal) if options.journal else Journal.temporary(Path(folder))
        )
        try:
            yield journal
        finally:
            journal.close()


async def _run_mappings(
    source: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
    client: SessionAPI | None,
    options: BatchOptions,
    stop: anyio.Event | None,
    on_result: Callable[[Result], None] | None,
) -> Summary:
    """The Python API for backends: rows as mappings, keyed by the caller."""
    if client is None:
        raise ValueError("a client is needed")
    summary = Summary(journalled=options.journal is not None)
    outputs = output_paths(options.out, options.out, ".jsonl") if options.out else {}
    refuse_overlap(outputs, {"journal": options.journal})
    async with _journal(options) as journal:
        run = Run(client, summary, journal, options, outputs, "jsonl", None, on_result, stop=stop)
        items = mapping_items(source, journal, options, summary)
        await run.execute(await _skip_active(items, client, run, options))
    return summary


async def expire_matching(
    filters: Mapping[str, Any],
    *,
    client: SessionAPI,
    options: BatchOptions,
    stop: anyio.Event | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Summary:
    """Expire every session the filters match: list them all (in parallel), then expire.

    Results are written only to ``options.out`` when it is given (``on_result`` and the summary
    say the rest), so a library call never leaves files in the caller's working folder.
    """
    uuids = [s.session_uuid async for s in client.iter_sessions(filters, concurrency=8)]
    rows = [{"key": u, "op": "expire", "session_uuid": u} for u in uuids]
    return await run_batch(
        rows,
        client=client,
        options=attrs.evolve(options, op="expire"),
        stop=stop,
        on_result=on_result,
    )
