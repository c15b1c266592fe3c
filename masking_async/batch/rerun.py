"""Running a command again is safe by default: where its journal lives, and starting over.

Without ``--journal`` a file's command keeps its journal beside the input, named after the file
and the command (``pairs.csv`` under ``create``: ``pairs.csv.create.journal``). Beside the input,
because that is where the results already go and where a user looks; named by command, because a
journal resumes only the command that made it (``update pairs.csv`` after ``create pairs.csv`` is
another run, not a resume). The same command run again resumes it; ``--fresh`` discards it first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from masking_async.batch.journal import JournalError, JournalLocked
from masking_async.batch.summary import Summary

__all__ = ["JOURNAL_SUFFIX", "default_journal", "discard_journal", "rerun_note"]

#: The default journal's name ends so: ``FILE.COMMAND.journal``.
JOURNAL_SUFFIX: Final = ".journal"
#: The files SQLite keeps beside a journal in WAL mode.
_SIDE_FILES: Final = ("-wal", "-shm")


def default_journal(source: Path, command: str) -> Path:
    """The journal a run of ``command`` over ``source`` keeps when none is named."""
    return source.with_name(f"{source.name}.{command}{JOURNAL_SUFFIX}")


def discard_journal(path: Path) -> bool:
    """Delete the journal at ``path`` (``--fresh``); False if there was none.

    Refused (:class:`JournalLocked`) while another run holds it: its rows are in flight.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise JournalError(f"{path}: cannot open the journal ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLocked(f"{path}: another run is using this journal") from None
        for side in _SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + side).unlink()
        path.unlink()
    finally:
        os.close(fd)
    return True


def rerun_note(summary: Summary, journal: Path | None) -> str:
    """What running the same command again would do, for the end of a run's summary."""
    if journal is None:
        return "no journal: running this again sends every row again"
    if summary.done and summary.resumed == summary.done and not summary.unprocessed:
        rows = "1 row" if summary.done == 1 else f"{summary.done} rows"
        return f"{rows} concluded by an earlier run; nothing sent (journal {journal})"
    return f"journal: {journal} (the same command again resumes; --fresh starts over)"
