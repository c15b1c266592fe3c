"""The batch engine: every row to exactly one known outcome, as fast as the account allows.

Each row moves through :mod:`masking_async.batch.rowstate`, every move committed to the journal
before the engine acts on it. A file is read once, checked and recorded in the journal (so a
malformed file stops the run before anything is sent, ``strict`` can refuse invalid rows, and a
resume refuses rows that changed); the run then streams the journal's rows, in input order, into
a bounded stream read by a fixed pool of workers that share one client (one rate limit).

Rows that act on the same session, and creates with identical parameters (which one lookup could
confuse), share a *lane*: they run one at a time, in input order. A transient failure (5xx, lost
connection, timeout) is not an outcome: the row is retried with backoff, paced by the client's
limiter, until ``deadline``; a lost create is first looked up (strict adoption, see
``client._adoption``). A 401/403 stops the run at once; a journal write error stops it too.
A stop (Ctrl-C) ends the feeding, gives rows in flight ``grace`` seconds, then cancels them.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sized
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc
import attrs

from masking_async.batch.journal import Journal, JournalEntry, JournalError, row_digest
from masking_async.batch.lanes import Lanes, Turn
from masking_async.batch.progress import show_progress
from masking_async.batch.results import (
    BatchUsageError,
    Result,
    ResultWriter,
    RowWriter,
    output_paths,
    refuse_overlap,
)
from masking_async.batch.rows import Task, to_task
from masking_async.batch.rowstate import Event, advance
from masking_async.batch.sources import (
    Format,
    Row,
    csv_header,
    detect_format,
    first_columns,
    read_rows,
    unused_columns,
)
from masking_async.batch.summary import Summary
from masking_async.client import CallTrace, LimiterStats
from masking_async.client._adoption import Lookup, create_lane
from masking_async.client._options import RetryPolicy
from masking_async.client._retry import backoff, maybe_applied
from masking_async.errors import (
    APIError,
    AuthenticationError,
    MaskingError,
    OutcomeUnknownError,
    PoolTimeout,
    RateLimitedError,
)
from masking_async.models import Session

__all__ = [
    "BatchOptions",
    "BatchUsageError",
    "SessionAPI",
    "StrictModeError",
    "expire_matching",
    "run_batch",
]

Source = Path | Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]


class SessionAPI(Protocol):
    """What the engine needs of a client (``MaskingClient`` has it)."""

    async def attempt_create(
        self, params: Mapping[str, Any], *, trace: CallTrace | None = None
    ) -> Session: ...
    async def attempt_update(
        self, session_uuid: str, params: Mapping[str, Any], *, trace: CallTrace | None = None
    ) -> Session | None: ...
    async def attempt_expire(
        self, session_uuid: str, *, trace: CallTrace | None = None
    ) -> None: ...
    async def lookup_create(
        self,
        params: Mapping[str, Any],
        *,
        sent_at: float,
        claimed: Callable[[str], bool] | None = None,
        not_before: float | None = None,
    ) -> Lookup: ...
    @property
    def lookup_delay(self) -> float: ...
    def create_lane(self, params: Mapping[str, Any]) -> AbstractAsyncContextManager[None]: ...
    async def get_session(
        self, session_uuid: str, *, trace: CallTrace | None = None
    ) -> Session: ...
    def iter_sessions(
        self, filters: Mapping[str, Any] | None = None, *, concurrency: int = 8
    ) -> AsyncIterator[Session]: ...
    @property
    def rate_stats(self) -> LimiterStats: ...


class StrictModeError(MaskingError):
    """``strict`` was asked and some rows are invalid: nothing was sent."""


@attrs.frozen(kw_only=True)
class BatchOptions:
    """How to run rows; ``op=None`` takes each row's operation from its ``op`` column."""

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
    #: Send again the rows an earlier run on this journal ended ``failed``.
    retry_failed: bool = False
    #: Seconds a row keeps retrying transient failures before it ends unresolved/unprocessed.
    deadline: float = 900.0
    #: The shape of the waits between those retries (attempt counts do not apply).
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: For mappings given to :func:`run_batch`: the field holding each row's unique key.
    key_field: str = "key"


@attrs.frozen
class _Item:
    """One row on its way to a worker: what the journal knows, the checked task, any refusal."""

    entry: JournalEntry
    task: Task
    problem: str | None = None


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _report_to_stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def _classify(error: MaskingError) -> Event:
    """What an error says about whether the server applied the request."""
    if isinstance(error, (RateLimitedError, AuthenticationError, PoolTimeout)):
        return "not_applied"
    return "lost" if maybe_applied(error) else "refused"


@attrs.frozen
class _Scanned:
    """What pass one found: how many rows, and those that differ from the journal's."""

    count: int
    changed: Mapping[str, JournalEntry]


def _scan(
    path: Path,
    fmt: Format,
    op: str | None,
    journal: Journal | None,
    summary: Summary,
    report: Callable[[str], None],
    strict: bool = False,
) -> _Scanned:
    """Pass one (a worker thread): read, check and record every row."""
    ignore = _ignored(path, fmt, op, report)
    meta = {
        "source": str(path.resolve()),
        "format": fmt,
        "columns": json.dumps(csv_header(path) if fmt == "csv" else None),
        "command": op or "run",
    }

    def rows() -> Iterable[JournalEntry]:
        for row in read_rows(path, fmt):
            task = to_task(row, op, text_cells=fmt == "csv", ignore=ignore)
            summary.total += 1
            if not task.valid:
                summary.invalid += 1
                for violation in task.violations:
                    report(f"{path}: line {row.line}: {violation} (row {row.record})")
            yield _fresh(str(row.record), row.record, row, task)

    if journal is None:
        for _ in rows():
            pass
        return _Scanned(summary.total, {})
    changed = journal.register(rows(), meta, keep=lambda: not (strict and summary.invalid))
    for key in list(changed)[:20]:
        report(f"{path}: row {key} differs from the input {journal.path} recorded; not run")
    return _Scanned(summary.total, changed)


def _ignored(
    path: Path, fmt: Format, op: str | None, report: Callable[[str], None]
) -> frozenset[str]:
    """Session attributes the operation does not use (a file ``list`` wrote): set aside."""
    ignored = unused_columns(op, first_columns(path, fmt))
    if ignored:
        report(f"note: columns {', '.join(ignored)} are not used by {op}; ignored")
    return frozenset(ignored)


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
    summary = Summary(dry_run=options.dry_run, journalled=options.journal is not None)
    if options.dry_run:
        await anyio.to_thread.run_sync(
            _scan, source, fmt, options.op, None, summary, report, abandon_on_cancel=True
        )
        return summary
    if client is None:
        raise ValueError("a client is needed unless dry_run is set")
    outputs = output_paths(source, options.out, source.suffix)
    refuse_overlap(outputs, {"input": source, "journal": options.journal})
    with tempfile.TemporaryDirectory(prefix="masking-async-") as folder:
        journal = (
            Journal.open(options.journal) if options.journal else Journal.temporary(Path(folder))
        )
        try:
            scanned = await anyio.to_thread.run_sync(
                _scan,
                source,
                fmt,
                options.op,
                journal,
                summary,
                report,
                options.strict,
                abandon_on_cancel=True,
            )
            if options.strict and summary.invalid:
                raise StrictModeError(
                    f"{summary.invalid} of {summary.total} rows are invalid; none sent"
                )
            columns = csv_header(source) if fmt == "csv" else None
            run = _Run(client, summary, journal, options, outputs, fmt, columns, on_result)
            ignore = _ignored(source, fmt, options.op, lambda _: None)
            items = _file_items(journal, options.op, fmt, scanned, ignore)
            await run.execute(items, stop)
        finally:
            await journal.close()
    return summary


async def _file_items(
    journal: Journal, op: str | None, fmt: Format, scanned: _Scanned, ignore: frozenset[str]
) -> AsyncIterator[_Item]:
    """The input's rows as the journal holds them, in order; rows that differ are refused."""
    seen: set[str] = set()
    for entry in journal.entries():
        if entry.ordinal > scanned.count:
            break  # the input no longer has this row: it is not this run's
        now = scanned.changed.get(entry.key)
        yield _item(now or entry, op, fmt, ignore, None if now is None else entry)
        seen.add(entry.key)
        await anyio.lowlevel.checkpoint()
    for key, now in scanned.changed.items():  # rows the journal never had
        if key not in seen:
            yield _item(now, op, fmt, ignore, now)


def _item(
    entry: JournalEntry,
    op: str | None,
    fmt: Format,
    ignore: frozenset[str],
    was: JournalEntry | None,
) -> _Item:
    task = to_task(Row(entry.line, entry.raw), op, text_cells=fmt == "csv", ignore=ignore)
    if was is None:
        return _Item(entry, task)
    # Refused: reported with the input's content, and kept out of the failed file if an earlier
    # version may have been applied (running that file again would apply it twice).
    problem = "differs from the row the journal recorded; run it with a new journal"
    return _Item(
        attrs.evolve(entry, state=was.state if was is not entry else "pending"), task, problem
    )


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
    with tempfile.TemporaryDirectory(prefix="masking-async-") as folder:
        journal = (
            Journal.open(options.journal) if options.journal else Journal.temporary(Path(folder))
        )
        try:
            run = _Run(client, summary, journal, options, outputs, "jsonl", None, on_result)
            await run.execute(_mapping_items(source, journal, options, summary), stop)
        finally:
            await journal.close()
    return summary


async def _mapping_items(
    source: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
    journal: Journal,
    options: BatchOptions,
    summary: Summary,
) -> AsyncIterator[_Item]:
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
        task = to_task(row, options.op, text_cells=False)
        problem = None
        if key is None or str(key) == "":
            key, problem = f"#{ordinal}", f"{options.key_field}: every row needs a unique key"
        elif str(key) in seen:
            problem = f"{options.key_field}: {key!r} repeats an earlier row's key"
        key = str(key)
        seen.add(key)
        fresh = _fresh(key, ordinal, row, task)
        entry = journal.entry(key)
        if entry is None:
            entry = fresh
        elif entry.digest != fresh.digest and problem is None:
            problem = "changed since the journal recorded it; give it a new key or a new journal"
        if problem is not None or not task.valid:
            summary.invalid += 1
        yield _Item(entry, task, problem)


class _Run:
    """One run's workers, writers and stop conditions."""

    def __init__(
        self,
        client: SessionAPI,
        summary: Summary,
        journal: Journal,
        options: BatchOptions,
        outputs: Mapping[str, Path],
        fmt: Format,
        columns: list[str] | None,
        on_result: Callable[[Result], None] | None,
    ) -> None:
        self.client, self.summary, self.journal, self.options = client, summary, journal, options
        self.on_result = on_result
        self.results = ResultWriter(outputs["results"]) if outputs else None
        self.rows = {
            name: RowWriter(path, fmt, columns)
            for name, path in outputs.items()
            if name != "results"
        }
        self.halt = anyio.Event()  # set on 401/403 or a journal failure: send nothing more
        self.lanes = Lanes()
        self.rng = random.Random()
        self._current: dict[int, JournalEntry] = {}  # where each row in flight stands

    async def execute(self, items: AsyncIterator[_Item], stop: anyio.Event | None) -> None:
        started = time.monotonic()
        stop = stop or anyio.Event()
        options = self.options
        send, receive = anyio.create_memory_object_stream[tuple[_Item, Turn]](
            max(1, options.concurrency) * 2
        )
        leftovers = receive.clone()  # kept open to collect what is still queued at the end
        work = anyio.CancelScope()
        self.journal.start()

        async def produce() -> None:
            async with send:
                async for item in items:
                    if stop.is_set() or self.halt.is_set():
                        self._not_run(item, "the run stopped first")
                        break
                    turn = self.lanes.admit(_lane(item.task))
                    try:
                        await send.send((item, turn))
                    except anyio.get_cancelled_exc_class():
                        turn.leave()
                        self._not_run(item, "the run stopped first")  # read, never queued
                        raise
                async for item in items:  # what is left after a stop
                    self._not_run(item, "the run stopped first")

        async def worker(stream: anyio.abc.ObjectReceiveStream[tuple[_Item, Turn]]) -> None:
            async with stream:
                async for item, turn in stream:
                    try:
                        await self._row(item, turn, stop)
                    finally:
                        turn.leave()  # whatever happened, the rows behind it go on

        async def cancel_after_grace() -> None:
            await stop.wait()
            self.summary.interrupted = True
            await anyio.sleep(options.grace)
            work.cancel()

        async def cancel_on_halt() -> None:
            await self.halt.wait()
            await anyio.sleep(min(1.0, options.grace))
            work.cancel()

        try:
            async with anyio.create_task_group() as outer:
                if options.progress:
                    outer.start_soon(
                        partial(show_progress, self.summary, stats=lambda: self.client.rate_stats)
                    )
                outer.start_soon(cancel_after_grace)
                outer.start_soon(cancel_on_halt)
                with work:
                    async with anyio.create_task_group() as group:
                        group.start_soon(produce)
                        with receive:
                            for _ in range(max(1, options.concurrency)):
                                group.start_soon(worker, receive.clone())
                outer.cancel_scope.cancel()
        finally:  # no await here: this runs even when cancelled
            with leftovers:
                while True:
                    try:
                        item, turn = leftovers.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    turn.leave()
                    self._not_run(item, "the run stopped first")
            self.summary.elapsed = time.monotonic() - started
            self.summary.limiter = str(self.client.rate_stats)
            self._close()

    # -- one row ------------------------------------------------------------------------------

    async def _row(self, item: _Item, turn: Turn, stop: anyio.Event) -> None:
        """Wait for the row's turn in its lane, then drive it to an outcome; on a stop, say
        where it stands (unprocessed, unresolved, or what an earlier run concluded)."""
        try:
            await turn.wait()
            await self._conclude(item, stop)
        except JournalError as error:
            self._stop("journal", str(error))
            self._not_run(item, str(error))
        except anyio.get_cancelled_exc_class():
            self._not_run(item, "stopped while in flight")
            raise

    async def _conclude(self, item: _Item, stop: anyio.Event) -> None:
        entry, task = item.entry, item.task
        if item.problem is not None or not task.valid:
            reason = item.problem or "; ".join(str(v) for v in task.violations)
            # An earlier version of a changed row may have been applied: never to the failed file.
            refile = entry.state in ("pending", "failed")
            self._finish(item, entry, "failed", error=reason, refile=refile)
            return
        if entry.state == "ok":
            self._finish(item, entry, "ok", resumed=True)
            return
        if entry.state == "failed":
            if not self.options.retry_failed:
                self._finish(item, entry, "failed", resumed=True)
                return
            entry = attrs.evolve(entry, state=advance("failed", "retry"), status=None, error=None)
        if entry.state == "sending":  # cut off by a crash while in flight
            entry = attrs.evolve(entry, state="unknown")
        # The client's lane: other batches sharing this client never create the pair meanwhile.
        lane = self.client.create_lane(task.params) if task.op == "create" else nullcontext()
        async with lane:
            await self._drive(item, entry, stop)

    async def _drive(self, item: _Item, entry: JournalEntry, stop: anyio.Event) -> None:
        task = item.task
        deadline = time.monotonic() + self.options.deadline
        started = time.perf_counter()
        trace = CallTrace()
        failures = tries = 0  # transient failures; sends and lookups made in this run
        self._current[id(item)] = entry
        while True:
            # The deadline bounds retries: every row gets its first try, whatever the deadline.
            late = tries > 0 and time.monotonic() > deadline
            if entry.state == "unknown":
                self._current[id(item)] = entry
                if stop.is_set() or self.halt.is_set() or late:
                    self._finish(item, entry, "unresolved", error=entry.error, started=started)
                    return
                if task.op != "create":  # an update or expire is safe to send again
                    entry = attrs.evolve(entry, state=advance("unknown", "absent"))
                    continue
                tries += 1
                try:
                    found = await self._lookup(task, entry)
                except AuthenticationError as error:
                    self._stop("auth", f"the server refused the credentials ({error.status})")
                    continue  # ends unresolved: the halt is seen at the top of the loop
                except MaskingError as error:
                    failures += 1
                    entry = attrs.evolve(entry, error=f"lookup failed: {error}")
                    await backoff(self.options.retry, failures, error, self.rng)
                    continue
                if found.session is not None:
                    entry = self._applied(entry, "adopted", found.session)
                    await self._commit(item, entry)
                    self._finish(item, entry, "ok", started=started)
                    return
                if found.ambiguous:
                    entry = attrs.evolve(
                        entry,
                        candidates=found.candidates,
                        error=f"{len(found.candidates)} sessions match this create; none adopted",
                    )
                    await self._commit(item, entry)
                    self._finish(item, entry, "unresolved", started=started)
                    return
                entry = attrs.evolve(entry, state=advance("unknown", "absent"))
            # pending: send it
            if stop.is_set() or self.halt.is_set() or late:
                self._unprocessed(item)
                return
            now = time.time()
            entry = attrs.evolve(
                entry,
                state=advance("pending", "send"),
                sent_at=now,
                lookup_at=now + self.client.lookup_delay,
                attempts=entry.attempts + 1,
                candidates=(),
            )
            await self._commit(item, entry)
            tries += 1
            trace.sent_at = None
            try:
                session = await self._send(task, trace)
            except MaskingError as error:
                event = _classify(error)
                status = error.status if isinstance(error, APIError) else None
                message = error.message if isinstance(error, APIError) else str(error)
                named = error.session_uuid if isinstance(error, OutcomeUnknownError) else None
                # When the request really left (after queueing for a connection and the limiter).
                left = trace.sent_at or entry.sent_at
                entry = attrs.evolve(
                    entry,
                    state=advance("sending", event),
                    sent_at=left,
                    lookup_at=max(entry.lookup_at or 0.0, (left or 0.0) + self.client.lookup_delay),
                    status=status,
                    error=message or type(error).__name__,
                    session_uuid=named or entry.session_uuid,
                )
                await self._commit(item, entry)
                if event == "refused":
                    self._finish(item, entry, "failed", started=started)
                    return
                if isinstance(error, AuthenticationError):
                    self._stop("auth", f"the server refused the credentials ({status})")
                    self._unprocessed(item)
                    return
                if event == "lost":
                    failures += 1
                    await backoff(self.options.retry, failures, error, self.rng)
                continue
            entry = self._applied(entry, "applied", session)
            await self._commit(item, entry)
            self._finish(item, entry, "ok", started=started)
            return

    async def _commit(self, item: _Item, entry: JournalEntry) -> None:
        """Store ``entry``; only once it is on disk is it where the row stands."""
        await self.journal.commit(entry)
        self._current[id(item)] = entry

    def _applied(self, entry: JournalEntry, event: Event, session: Session | None) -> JournalEntry:
        return attrs.evolve(
            entry,
            state=advance(entry.state, event),
            session_uuid=session.session_uuid if session else entry.session_uuid,
            virtual_number=session.virtual_number if session else entry.virtual_number,
            adopted=event == "adopted",
            status=None,
            error=None,
            candidates=(),
        )

    async def _send(self, task: Task, trace: CallTrace) -> Session | None:
        if task.op == "create":
            return await self.client.attempt_create(task.params, trace=trace)
        assert task.session_uuid is not None
        if task.op == "update":
            return await self.client.attempt_update(task.session_uuid, task.params, trace=trace)
        await self.client.attempt_expire(task.session_uuid, trace=trace)
        return None

    async def _lookup(self, task: Task, entry: JournalEntry) -> Lookup:
        """Did this row's create make a session? By the id the server named, else by search."""
        if entry.session_uuid is not None:
            session = await self.client.get_session(entry.session_uuid)
            return Lookup(session, (session.session_uuid,))
        assert entry.sent_at is not None
        return await self.client.lookup_create(
            task.params,
            sent_at=entry.sent_at,
            claimed=lambda uuid: self.journal.claimed_elsewhere(uuid, entry.key),
            not_before=entry.lookup_at,
        )

    # -- outcomes -----------------------------------------------------------------------------

    def _stop(self, why: Any, reason: str) -> None:
        if self.summary.halted is None:
            self.summary.halted, self.summary.halt_reason = why, reason
        self.halt.set()

    def _finish(
        self,
        item: _Item,
        entry: JournalEntry,
        outcome: str,
        *,
        error: str | None = None,
        resumed: bool = False,
        started: float | None = None,
        refile: bool = True,
    ) -> None:
        result = Result(
            key=entry.key,
            line=entry.line,
            ref=item.task.ref,
            op=item.task.op,
            outcome=outcome,
            session_uuid=entry.session_uuid or item.task.session_uuid,
            virtual_number=entry.virtual_number,
            status=entry.status,
            error=error or entry.error if outcome != "ok" else None,
            attempts=entry.attempts,
            adopted=entry.adopted,
            resumed=resumed,
            candidates=entry.candidates,
            latency_ms=_since(started) if started is not None else None,
        )
        self._current.pop(id(item), None)
        self.summary.add(result)
        if self.results is not None:
            self.results.write(result)
        if outcome != "ok" and refile and f"{outcome} rows" in self.rows:
            self.rows[f"{outcome} rows"].write(entry.raw, result.error)
        if self.on_result is not None:
            self.on_result(result)

    def _not_run(self, item: _Item, reason: str) -> None:
        """A row this run stopped short of concluding: where does it stand?"""
        entry = self._current.pop(id(item), item.entry)
        if entry.state in ("sending", "unknown"):
            self._finish(item, attrs.evolve(entry, error=reason), "unresolved")
        elif entry.state in ("ok", "failed") and item.problem is None and item.task.valid:
            self._finish(item, entry, entry.state, resumed=True)
        else:
            self._unprocessed(item)

    def _unprocessed(self, item: _Item) -> None:
        self._current.pop(id(item), None)
        self.summary.unprocessed += 1
        if "unprocessed rows" in self.rows:
            self.rows["unprocessed rows"].write(item.entry.raw)

    def _close(self) -> None:
        files = {}
        if self.results is not None:
            self.results.close()
            files["results"] = self.results.path
        for name, writer in self.rows.items():
            writer.close()
            if writer.count:
                files[name] = writer.path
        self.summary.files = files


def _lane(task: Task) -> str:
    if task.op == "create":
        return create_lane(task.params)
    return f"session:{task.session_uuid}"


async def expire_matching(
    filters: Mapping[str, Any],
    *,
    client: SessionAPI,
    options: BatchOptions,
    stop: anyio.Event | None = None,
) -> Summary:
    """Expire every session the filters match: list them all (in parallel), then expire."""
    uuids = [s.session_uuid async for s in client.iter_sessions(filters, concurrency=8)]
    out = options.out or Path("expired.results.jsonl")
    rows = [{"key": u, "op": "expire", "session_uuid": u} for u in uuids]
    return await run_batch(
        rows, client=client, options=attrs.evolve(options, op="expire", out=out), stop=stop
    )
