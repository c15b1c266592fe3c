"""The batch engine: files of rows to sessions, one known outcome per row, resumable."""

from masking_async.batch.engine import (
    BatchOptions,
    SessionAPI,
    StrictModeError,
    expire_matching,
    run_batch,
)
from masking_async.batch.journal import JournalError
from masking_async.batch.results import Result
from masking_async.batch.sources import SourceError
from masking_async.batch.summary import Summary

__all__ = [
    "BatchOptions",
    "JournalError",
    "Result",
    "SessionAPI",
    "SourceError",
    "StrictModeError",
    "Summary",
    "expire_matching",
    "run_batch",
]
