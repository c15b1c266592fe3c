"""Rebuild a run's files from its journal alone: results, failed, unresolved and unprocessed rows.

After a crash (or a lost results file) the journal still knows every row and where it stands;
this writes the same files a run writes, with ``sending`` rows reported as unresolved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from masking_async.batch.columns import ColumnError, Columns
from masking_async.batch.journal import Journal, JournalEntry, JournalError
from masking_async.batch.results import (
    ResultWriter,
    RowWriter,
    output_paths,
    refuse_overlap,
    result_of,
)
from masking_async.batch.rows import Task, to_task
from masking_async.batch.sources import FORMATS, Format, Row, row_suffix, unused_columns
from masking_async.batch.summary import Summary

__all__ = ["rebuild"]

_OUTCOME = {"ok": "ok", "failed": "failed", "unknown": "unresolved", "sending": "unresolved"}


def _shown(
    meta: dict[str, str], columns: list[str] | None, fmt: Format
) -> Callable[[JournalEntry], Task]:
    """Each row read again as the run read it (its --map and region, from the journal), for the
    ref, the parties as sent and the user's own columns the results carry."""
    maps = json.loads(meta.get("maps") or "{}")
    region = meta.get("default_region") or None
    command = meta.get("command")
    op = None if command in (None, "run") else command
    try:
        plan = Columns.plan(columns or [], maps, op, header=False)
    except ColumnError:  # refused when the run began, so no row of it was sent
        plan = Columns()
    ignore = unused_columns(op, [plan.rename.get(name, name) for name in columns or []])

    def read(entry: JournalEntry) -> Task:
        row = Row(entry.line, entry.raw)
        return to_task(row, op, text_cells=fmt == "csv", ignore=ignore, columns=plan, region=region)

    return read


def rebuild(journal_path: Path, out: Path | None = None) -> Summary:
    """Write the files of the run ``journal_path`` recorded; returns their summary."""
    journal = Journal.open(journal_path, create=False)  # also refuses while a run holds it
    try:
        meta = journal.meta()
        if "source" not in meta:
            raise JournalError(f"{journal_path}: records no input file; nothing to rebuild")
        source = Path(meta["source"])
        fmt: Format = FORMATS.get(f".{meta.get('format')}", "jsonl")
        columns = json.loads(meta.get("columns") or "null")
        shown = _shown(meta, columns, fmt)
        outputs = output_paths(source, out, row_suffix(source, fmt))
        refuse_overlap(outputs, {"input": source, "journal": journal_path})
        results_path = outputs["results"]
        results = ResultWriter(results_path)
        rows = {
            kind: RowWriter(outputs[f"{kind} rows"], fmt, columns)
            for kind in ("failed", "unresolved", "unprocessed")
        }
        summary = Summary(journalled=True)
        for entry in journal.entries():
            summary.total += 1
            outcome = _OUTCOME.get(entry.state)
            if outcome is None:
                summary.unprocessed += 1
                rows["unprocessed"].write(entry.raw)
                continue
            task = shown(entry)
            result = result_of(
                entry, outcome, ref=task.ref, op=entry.op, resumed=True, shown=task.shown
            )
            summary.add(result)
            results.write(result)
            if outcome != "ok":
                rows[outcome].write(entry.raw, result.error)
        results.close()
        summary.files["results"] = results_path
        for kind, writer in rows.items():
            writer.close()
            if writer.count:
                summary.files[f"{kind} rows"] = writer.path
        return summary
    finally:
        journal.close()
