"""Running rows to outcomes: a run's task group, its stop conditions, and what it writes.

Each row is a task of its own inside a bounded window of rows in memory; what is scarce, requests
in flight, is bounded by the run's workers (``concurrency``), which a row holds only while it sends
or looks up (:mod:`.drive`, steps from :mod:`.rowstate`). A row waiting for a lookup, a backoff or
the row ahead of it holds none, so faults cost the faulted rows, not the job. Rows that act on the
same session, and creates of the same parties (which one lookup could confuse), share a *lane*
(:mod:`.lanes`): one at a time, in input order; the rows behind a waiting row wait with it.

A run stops on Ctrl-C (``stop``: rows in flight get ``grace`` seconds, then are cancelled), on a
401/403 or a journal that cannot be written (a halt), and when the server cannot be reached at all
(only failures, no answer, for ``unreachable_after`` seconds from the start). Whatever stops it,
every input row ends in exactly one place: a result, or the unprocessed or unresolved file.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from masking_async.batch.drive import Ending, Shared, drive
from masking_async.batch.intake import Item
from masking_async.batch.journal import Journal, JournalEntry, JournalError
from masking_async.batch.lanes import Lanes, Turn
from masking_async.batch.options import BatchOptions, SessionAPI
from masking_async.batch.progress import Gauges, show_progress
from masking_async.batch.results import Result, ResultWriter, RowWriter, result_of
from masking_async.batch.rowstate import FINAL
from masking_async.batch.sources import Format
from masking_async.batch.summary import Halt, Summary
from masking_async.client import create_lane

__all__ = ["ROWS_IN_MEMORY", "Run"]

#: Rows read and not yet ended, at most: waiting rows cost memory, not workers, and this bounds it.
ROWS_IN_MEMORY: Final = 4096
#: Rows marked not run between two checkpoints, when a stop leaves the rest of a file to account.
_DRAIN_BATCH: Final = 256


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class Run:
    """One run's rows, writers and stop conditions."""

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
        *,
        stop: anyio.Event | None = None,
        drain: bool = False,
    ) -> None:
        """``drain``: after a stop, read the rest of the rows to report them unprocessed (a
        file's rows, whose source has no await inside, so a stop never closes it halfway)."""
        self.client, self.summary, self.journal, self.options = client, summary, journal, options
        self.on_result, self.drain = on_result, drain
        self.results = ResultWriter(outputs["results"]) if outputs else None
        self.rows = {
            name: RowWriter(path, fmt, columns)
            for name, path in outputs.items()
            if name != "results"
        }
        self.halt = anyio.Event()  # on 401/403, a journal failure, an unreachable server
        self.lanes = Lanes()
        self.gauges = Gauges()
        self.shared = Shared(
            client=client,
            journal=journal,
            options=options,
            workers=anyio.Semaphore(max(1, options.concurrency), fast_acquire=True),
            stop=stop or anyio.Event(),
            stopping=anyio.Event(),
            gauges=self.gauges,
            began=time.time(),
            began_mono=time.monotonic(),
            halt=self._stop,
        )
        #: Rows that ended unresolved, or waited behind one: the row their lane must not pass.
        self._blocking: dict[int, str] = {}

    async def execute(self, items: AsyncIterator[Item]) -> None:
        started = time.monotonic()
        stop = self.shared.stop
        options, traffic = self.options, self.client.traffic
        heard, failed = traffic.answered, traffic.unanswered  # a client may serve several runs
        window = anyio.Semaphore(ROWS_IN_MEMORY, fast_acquire=True)
        work = anyio.CancelScope()

        async def produce(group: anyio.abc.TaskGroup) -> None:
            skipped = 0
            async for item in items:
                if self.shared.stopped():
                    self._not_run(item, "the run stopped first")
                    skipped += 1
                    if skipped % _DRAIN_BATCH == 0:  # a long rest of a file: let answers in
                        await anyio.lowlevel.checkpoint()
                    continue
                try:
                    await window.acquire()
                except anyio.get_cancelled_exc_class():
                    self._not_run(item, "the run stopped first")  # read, never started
                    raise
                group.start_soon(self._row, item, self.lanes.admit(_lane(item)), window)

        async def cancel_after_grace() -> None:
            await stop.wait()
            self.summary.interrupted = True
            self._stopping()
            await anyio.sleep(options.grace)
            work.cancel()

        async def cancel_on_halt() -> None:
            await self.halt.wait()
            await anyio.sleep(min(1.0, options.grace))
            work.cancel()

        async def stop_if_unreachable() -> None:
            """No answer at all, only failures, for ``unreachable_after`` s: stop the run."""
            while traffic.answered == heard:
                await anyio.sleep(min(1.0, options.unreachable_after / 10))
                silent = time.monotonic() - started >= options.unreachable_after
                if silent and traffic.answered == heard and traffic.unanswered > failed:
                    self._stop("unreachable", traffic.last_failure)
                    return

        try:
            async with self.journal.writing(), anyio.create_task_group() as outer:
                if options.progress:
                    outer.start_soon(
                        partial(
                            show_progress,
                            self.summary,
                            stats=lambda: self.client.rate_stats,
                            traffic=traffic,
                            gauges=self.gauges,
                        )
                    )
                outer.start_soon(cancel_after_grace)
                outer.start_soon(cancel_on_halt)
                outer.start_soon(stop_if_unreachable)
                with work:
                    async with anyio.create_task_group() as group:
                        await produce(group)
                outer.cancel_scope.cancel()
        finally:
            if self.drain:  # the rows never read: each is reported, none is lost
                with anyio.CancelScope(shield=True):
                    async for item in items:
                        self._not_run(item, "the run stopped first")
            self.summary.elapsed = time.monotonic() - started
            self.summary.limiter = str(self.client.rate_stats)
            self.summary.answers = traffic.answered - heard
            self.summary.unanswered = traffic.unanswered - failed
            self._close()

    def _stopping(self) -> None:
        """Stop or halt: waits end, and requests still queued for a connection or a rate token
        never leave (only the wait is ever called off, never a send)."""
        self.shared.stopping.set()
        for trace in self.shared.sending.values():
            trace.call_off()

    # -- one row ------------------------------------------------------------------------------

    async def _row(self, item: Item, turn: Turn, window: anyio.Semaphore) -> None:
        """Wait for the row's turn in its lane, then drive it to an outcome; on a stop, say
        where it stands (unprocessed, unresolved, or what an earlier run concluded)."""
        try:
            blocker = await turn.wait()
            if blocker is not None:
                # Sent now, this row could land before the unresolved one, or (a create) adopt
                # its session: it waits for the run that resolves that row.
                self._blocking[id(item)] = blocker
                self._not_run(item, f"waits for row {blocker} of its lane, unresolved")
                return
            self._end(item, await self._drive(item))
        except JournalError as error:
            self._stop("journal", str(error))
            self._not_run(item, str(error))
        except anyio.get_cancelled_exc_class():
            self._not_run(item, "stopped while in flight")
            raise
        finally:  # whatever happened, the rows behind it go on (or learn why not)
            turn.leave(self._blocking.pop(id(item), None))
            window.release()

    async def _drive(self, item: Item) -> tuple[Ending, float]:
        """The row's ending, and when it started here."""
        entry, task = item.entry, item.task
        started = time.perf_counter()
        if item.problem is not None or not task.valid:
            reason = item.problem or "; ".join(str(v) for v in task.violations)
            return Ending("failed", attrs.evolve(entry, error=reason), resumed=False), started
        retry = entry.state == "failed" and self.options.retry_failed
        # The client's lane: other batches sharing this client never create the pair meanwhile.
        lane = self.client.create_lane(task.params) if task.op == "create" else nullcontext()
        async with lane:
            return await drive(self.shared, item, entry, retry), started

    def _end(self, item: Item, ended: tuple[Ending, float]) -> None:
        ending, started = ended
        if item.problem is not None or not item.task.valid:
            # An earlier version of a changed row may have been applied: never to the failed file.
            refile = item.entry.state in ("pending", "failed")
            self._finish(item, ending.entry, "failed", refile=refile)
        elif ending.outcome == "unprocessed":
            self._unprocessed(item)
        elif ending.resumed:
            self._finish(item, ending.entry, ending.outcome, resumed=True)
        else:
            self._finish(item, ending.entry, ending.outcome, started=ending.began or started)

    def _stop(self, why: Halt, reason: str) -> None:
        """Halt: at once, before any other row can take the worker this one frees."""
        if self.summary.halted is None:
            self.summary.halted, self.summary.halt_reason = why, reason
        self.halt.set()
        self._stopping()

    # -- outcomes -----------------------------------------------------------------------------

    def _finish(
        self,
        item: Item,
        entry: JournalEntry,
        outcome: str,
        *,
        error: str | None = None,
        resumed: bool = False,
        started: float | None = None,
        refile: bool = True,
    ) -> None:
        result = result_of(
            entry,
            outcome,
            ref=item.task.ref,
            op=item.task.op,
            session_uuid=item.task.session_uuid,
            error=error,
            resumed=resumed,
            latency_ms=_since(started) if started is not None else None,
            shown=item.task.shown,
        )
        self.shared.current.pop(id(item), None)
        if outcome == "unresolved":
            self._blocking.setdefault(id(item), item.entry.key)
        self.summary.add(result)
        if self.results is not None:
            self.results.write(result)
        if outcome != "ok" and refile and f"{outcome} rows" in self.rows:
            self.rows[f"{outcome} rows"].write(entry.raw, result.error)
        if self.on_result is not None:
            self.on_result(result)

    def _not_run(self, item: Item, reason: str) -> None:
        """A row this run stopped short of concluding: where does it stand?"""
        entry = self.shared.current.pop(id(item), item.entry)
        if entry.state in ("sending", "unknown"):
            self._finish(item, attrs.evolve(entry, error=reason), "unresolved")
        elif entry.state in FINAL and item.problem is None and item.task.valid:
            self._finish(item, entry, entry.state, resumed=True)
        else:
            self._unprocessed(item)

    def _unprocessed(self, item: Item) -> None:
        self.shared.current.pop(id(item), None)
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


def _lane(item: Item) -> str:
    task = item.task
    if item.problem is not None or not task.valid:  # never sent: nothing to order it with
        return f"row:{item.entry.key}"
    if task.op == "create":
        return create_lane(task.params)
    return f"session:{task.session_uuid}"
