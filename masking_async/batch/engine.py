"""The batch engine: every row of a file to exactly one outcome, as fast as the account allows.

A first pass reads the whole file (as a stream) and checks every row, so a malformed file stops
the run before anything is sent, ``--strict`` can refuse invalid rows, and the progress bar knows
its total. The second pass feeds a bounded stream (backpressure) read by a fixed pool of workers
that all call one client, and so share its rate limit and retries. A stop (Ctrl-C, SIGTERM) ends
the feeding at once, gives rows in flight ``grace`` seconds, then cancels them; every row not
finished is written to the unprocessed file, and the journal tells the next run where to resume.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from masking_async.batch.journal import Journal, JournalEntry, fingerprint
from masking_async.batch.progress import show_progress
from masking_async.batch.results import Result, ResultWriter, RowWriter
from masking_async.batch.rows import Task, to_task
from masking_async.batch.sources import Format, SourceError, csv_header, detect_format, read_rows
from masking_async.batch.summary import Summary
from masking_async.client import CallTrace
from masking_async.client._retry import is_retryable
from masking_async.errors import APIError, MaskingError
from masking_async.models import Session

__all__ = ["BatchOptions", "SessionAPI", "StrictModeError", "expire_matching", "run_batch"]

#: How far before a journalled send a create's session may have been stamped (clock skew).
_RECONCILE_MARGIN = timedelta(seconds=30)


class SessionAPI(Protocol):
    """What the engine needs of a client (``MaskingClient`` has it; tests may fake it)."""

    async def create_session(self, request: Any, *, trace: CallTrace | None = None) -> Session: ...
    async def update_session(
        self, session_uuid: str, request: Any, *, trace: CallTrace | None = None
    ) -> Session: ...
    async def expire_session(
        self, session_uuid: str, *, trace: CallTrace | None = None
    ) -> None: ...
    async def find_created_session(
        self, first_party: str, second_party: str | None, *, created_since: datetime
    ) -> Session | None: ...
    def iter_sessions(
        self, filters: Mapping[str, Any] | None = None, *, concurrency: int = 8
    ) -> AsyncIterator[Session]: ...


class StrictModeError(MaskingError):
    """``strict`` was asked and some rows are invalid: nothing was sent."""


@attrs.frozen(kw_only=True)
class BatchOptions:
    """How to run a file; ``op=None`` takes each row's operation from its ``op`` column."""

    op: str | None = None
    format: str | None = None
    concurrency: int = 16
    out: Path | None = None
    journal: Path | None = None
    dry_run: bool = False
    strict: bool = False
    progress: bool = True
    #: Seconds rows in flight may take to finish after a stop before they are cancelled.
    grace: float = 10.0


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _report_to_stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def _scan(
    path: Path, fmt: Format, op: str | None, summary: Summary, report: Callable[[str], None]
) -> None:
    """Pass one: read and check every row (in a worker thread), reporting each bad one."""
    for row in read_rows(path, fmt):
        task = to_task(row, op, text_cells=fmt == "csv")
        summary.total += 1
        if not task.valid:
            summary.invalid += 1
            for violation in task.violations:
                report(f"{path}: line {task.line}: {violation.field}: {violation.rule}")


def _outputs(path: Path, out: Path | None) -> tuple[Path, Path, Path]:
    results = out or path.with_name(f"{path.stem}.results.jsonl")
    stem = results.with_suffix("")
    return (
        results,
        stem.with_name(f"{stem.name}.failed{path.suffix}"),
        stem.with_name(f"{stem.name}.unprocessed{path.suffix}"),
    )


async def run_batch(
    path: Path,
    *,
    client: SessionAPI | None,
    options: BatchOptions,
    stop: anyio.Event | None = None,
    report: Callable[[str], None] = _report_to_stderr,
) -> Summary:
    """Run every row of ``path``; returns the summary (see ``Summary.exit_status``).

    Raises :class:`SourceError` for a malformed file and :class:`StrictModeError` when
    ``strict`` finds invalid rows, in both cases before anything is sent.
    """
    fmt = detect_format(path, options.format)
    summary = Summary(dry_run=options.dry_run)
    await anyio.to_thread.run_sync(_scan, path, fmt, options.op, summary, report)
    if options.dry_run:
        return summary
    if options.strict and summary.invalid:
        raise StrictModeError(f"{summary.invalid} of {summary.total} rows are invalid; none sent")
    if client is None:
        raise ValueError("a client is needed unless dry_run is set")
    journal = None
    if options.journal is not None:
        journal = await Journal.open(
            options.journal, await anyio.to_thread.run_sync(fingerprint, path)
        )
    results_path, failed_path, unprocessed_path = _outputs(path, options.out)
    columns = csv_header(path) if fmt == "csv" else None
    run = _Run(
        client=client,
        summary=summary,
        journal=journal,
        results=ResultWriter(results_path),
        failed=RowWriter(failed_path, fmt, columns),
        unprocessed=RowWriter(unprocessed_path, fmt, columns),
    )
    tasks = (to_task(row, options.op, text_cells=fmt == "csv") for row in read_rows(path, fmt))
    await run.execute(tasks, options, stop or anyio.Event())
    return summary


async def expire_matching(
    filters: Mapping[str, Any],
    *,
    client: SessionAPI,
    options: BatchOptions,
    stop: anyio.Event | None = None,
) -> Summary:
    """Expire every session the filters match: list them all (in parallel), then expire."""
    uuids = [s.session_uuid async for s in client.iter_sessions(filters, concurrency=8)]
    summary = Summary(total=len(uuids))
    out = options.out or Path("expired.results.jsonl")
    stem = out.with_suffix("")
    run = _Run(
        client=client,
        summary=summary,
        journal=None,
        results=ResultWriter(out),
        failed=RowWriter(stem.with_name(f"{stem.name}.failed.jsonl"), "jsonl", None),
        unprocessed=RowWriter(stem.with_name(f"{stem.name}.unprocessed.jsonl"), "jsonl", None),
    )
    tasks = (
        Task(line=i, op="expire", params={}, raw={"session_uuid": u}, session_uuid=u)
        for i, u in enumerate(uuids, 1)
    )
    await run.execute(tasks, options, stop or anyio.Event())
    return summary


@attrs.define
class _Run:
    client: SessionAPI
    summary: Summary
    journal: Journal | None
    results: ResultWriter
    failed: RowWriter
    unprocessed: RowWriter

    async def execute(
        self, tasks: Iterator[Task], options: BatchOptions, stop: anyio.Event
    ) -> None:
        started = time.monotonic()
        send, receive = anyio.create_memory_object_stream[tuple[Task, JournalEntry | None]](
            max(1, options.concurrency) * 2
        )
        leftovers = receive.clone()  # kept open to collect what is still queued at the end
        work = anyio.CancelScope()

        async def produce() -> None:
            async with send:
                for task in tasks:
                    if not task.valid:
                        error = "; ".join(str(v) for v in task.violations)
                        self._record(
                            task, Result(task.line, task.ref, task.op, "failed", error=error)
                        )
                        continue
                    previous = self.journal.entry(task.line) if self.journal else None
                    if previous is not None and previous.state == "done":
                        self._skipped(task, previous)
                        continue
                    if stop.is_set():
                        self._unprocessed(task)
                        break
                    try:
                        await send.send((task, previous))
                    except anyio.get_cancelled_exc_class():
                        self._unprocessed(task)  # read from the file but never queued
                        raise

        async def worker(
            stream: anyio.abc.ObjectReceiveStream[tuple[Task, JournalEntry | None]],
        ) -> None:
            async with stream:
                async for task, previous in stream:
                    if stop.is_set():
                        self._unprocessed(task)
                        continue
                    try:
                        self._record(task, await self._process(task, previous))
                    except anyio.get_cancelled_exc_class():
                        self._unprocessed(task)
                        raise

        async def cancel_after_grace() -> None:
            await stop.wait()
            self.summary.interrupted = True
            await anyio.sleep(options.grace)
            work.cancel()

        try:
            async with anyio.create_task_group() as outer:
                if options.progress:
                    outer.start_soon(show_progress, self.summary)
                outer.start_soon(cancel_after_grace)
                with work:
                    async with anyio.create_task_group() as group:
                        group.start_soon(produce)
                        with receive:
                            for _ in range(max(1, options.concurrency)):
                                group.start_soon(worker, receive.clone())
                outer.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                self._drain(leftovers, tasks)
                self.summary.elapsed = time.monotonic() - started
                await self._close()

    async def _process(self, task: Task, previous: JournalEntry | None) -> Result:
        trace = CallTrace()
        started = time.perf_counter()
        session: Session | None = None
        try:
            if self.journal is not None:
                if previous is not None and previous.state == "sending" and task.op == "create":
                    session = await self._reconcile(task, previous)
                    trace.adopted = session is not None
                if session is None:
                    await self.journal.sending(task.line, task.op, time.time())
            if session is not None:
                pass
            elif task.op == "create":
                session = await self.client.create_session(task.params, trace=trace)
            elif task.op == "update":
                assert task.session_uuid is not None
                session = await self.client.update_session(
                    task.session_uuid, task.params, trace=trace
                )
            else:
                assert task.session_uuid is not None
                await self.client.expire_session(task.session_uuid, trace=trace)
        except MaskingError as error:
            status = error.status if isinstance(error, APIError) else None
            message = error.message if isinstance(error, APIError) else str(error)
            result = Result(
                task.line,
                task.ref,
                task.op,
                "failed",
                session_uuid=task.session_uuid,
                status=status,
                error=message or type(error).__name__,
                attempts=trace.attempts,
                latency_ms=_since(started),
            )
            self._journal(result, retry=is_retryable(error))
            return result
        self.summary.adopted += trace.adopted
        result = Result(
            task.line,
            task.ref,
            task.op,
            "ok",
            session_uuid=session.session_uuid if session else task.session_uuid,
            virtual_number=session.virtual_number if session else None,
            status=trace.last_status,
            attempts=trace.attempts,
            latency_ms=_since(started),
        )
        self._journal(result, retry=False)
        return result

    async def _reconcile(self, task: Task, previous: JournalEntry) -> Session | None:
        """A create that was in flight when the last run died: did the server make it?"""
        assert previous.sent_at is not None
        since = datetime.fromtimestamp(previous.sent_at, timezone.utc) - _RECONCILE_MARGIN
        return await self.client.find_created_session(
            task.params["first_party"], task.params.get("second_party"), created_since=since
        )

    def _journal(self, result: Result, *, retry: bool) -> None:
        if self.journal is not None:
            self.journal.finished(
                result.line,
                retry=retry,
                outcome=result.outcome,
                session_uuid=result.session_uuid,
                virtual_number=result.virtual_number,
                status=result.status,
                error=result.error,
            )

    def _record(self, task: Task, result: Result) -> None:
        self.summary.add(result)
        self.results.write(result)
        if result.outcome == "failed":
            self.failed.write(dict(task.raw))

    def _skipped(self, task: Task, previous: JournalEntry) -> None:
        self._record(
            task,
            Result(
                task.line,
                task.ref,
                task.op,
                "skipped",
                session_uuid=previous.session_uuid,
                virtual_number=previous.virtual_number,
                status=previous.status,
                error=previous.error,
            ),
        )

    def _unprocessed(self, task: Task) -> None:
        self.summary.unprocessed += 1
        self.unprocessed.write(dict(task.raw))

    def _drain(
        self, receive: MemoryObjectReceiveStream[tuple[Task, Any]], tasks: Iterable[Task]
    ) -> None:
        """Rows still queued or never read become unprocessed, so none is lost silently."""
        with receive:
            while True:
                try:
                    task, _ = receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
                self._unprocessed(task)
        try:
            for task in tasks:
                self._unprocessed(task)
        except SourceError:
            pass  # the first pass read the whole file; it cannot fail here unless it changed

    async def _close(self) -> None:
        for name, writer in (("failed rows", self.failed), ("unprocessed rows", self.unprocessed)):
            writer.close()
            if writer.count:
                self.summary.files[name] = writer.path
        self.results.close()
        self.summary.files = {"results": self.results.path, **self.summary.files}
        if self.journal is not None:
            await self.journal.close()
