"""Driving rows to outcomes: a pool of workers, each row through its state machine.

Rows that act on the same session, and creates of the same parties (which one lookup could
confuse), share a *lane*: they run one at a time, in input order. A transient failure (5xx, lost
connection, timeout) is not an outcome: the row is retried with backoff, paced by the client's
limiter, until ``deadline``; a lost create is first looked up (strict adoption, see
``client._adoption``). A 401/403 stops the run at once; a journal write error stops it too. A
stop (Ctrl-C) ends the feeding, gives rows in flight ``grace`` seconds, then cancels them.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

from masking_async.batch.intake import Item
from masking_async.batch.journal import Journal, JournalEntry, JournalError
from masking_async.batch.lanes import Lanes, Turn
from masking_async.batch.options import BatchOptions, SessionAPI
from masking_async.batch.progress import show_progress
from masking_async.batch.results import Result, ResultWriter, RowWriter, result_of
from masking_async.batch.rows import Task
from masking_async.batch.rowstate import Event, advance
from masking_async.batch.sources import Format
from masking_async.batch.summary import Summary
from masking_async.client import CalledOff, CallTrace
from masking_async.client._adoption import Lookup, create_lane, settle_until
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

__all__ = ["Run"]


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _classify(error: MaskingError) -> Event:
    """What an error says about whether the server applied the request."""
    if isinstance(error, (RateLimitedError, AuthenticationError, PoolTimeout)):
        return "not_applied"
    return "lost" if maybe_applied(error) else "refused"


class Run:
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
        # The journal is ours from here: a run that died holding it was alive no later than this.
        self.began, self.began_mono = time.time(), time.monotonic()
        #: Rows that ended unresolved, or waited behind one: the row their lane must not pass.
        self._blocking: dict[int, str] = {}
        self._current: dict[int, JournalEntry] = {}  # where each row in flight stands
        #: The calls of rows sending now: a stop calls off those that have not left yet.
        self._sending: dict[int, CallTrace] = {}

    async def execute(self, items: AsyncIterator[Item], stop: anyio.Event | None) -> None:
        started = time.monotonic()
        stop = stop or anyio.Event()
        options = self.options
        send, receive = anyio.create_memory_object_stream[tuple[Item, Turn]](
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
                    turn = self.lanes.admit(_lane(item))
                    try:
                        await send.send((item, turn))
                    except anyio.get_cancelled_exc_class():
                        turn.leave()
                        self._not_run(item, "the run stopped first")  # read, never queued
                        raise
                async for item in items:  # what is left after a stop
                    self._not_run(item, "the run stopped first")

        async def worker(stream: anyio.abc.ObjectReceiveStream[tuple[Item, Turn]]) -> None:
            async with stream:
                async for item, turn in stream:
                    try:
                        await self._row(item, turn, stop)
                    finally:  # whatever happened, the rows behind it go on (or learn why not)
                        turn.leave(self._blocking.pop(id(item), None))

        async def cancel_after_grace() -> None:
            await stop.wait()
            self.summary.interrupted = True
            self._call_off_waiting()
            await anyio.sleep(options.grace)
            work.cancel()

        async def cancel_on_halt() -> None:
            await self.halt.wait()
            self._call_off_waiting()
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

    async def _row(self, item: Item, turn: Turn, stop: anyio.Event) -> None:
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
            await self._conclude(item, stop)
        except JournalError as error:
            self._stop("journal", str(error))
            self._not_run(item, str(error))
        except anyio.get_cancelled_exc_class():
            self._not_run(item, "stopped while in flight")
            raise

    async def _conclude(self, item: Item, stop: anyio.Event) -> None:
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
        ready = None  # when a lookup or a re-send is conclusive, on the monotonic clock
        if entry.state == "sending":  # cut off by a crash while in flight
            # Its request may have left at any moment up to the crash (after waiting for the
            # limiter, say), so only a lookup a full delay after this run began is conclusive:
            # the longer of this run's delay and the one the request was sent with.
            delay = max(self.client.lookup_delay, (entry.lookup_at or 0.0) - (entry.sent_at or 0.0))
            entry = attrs.evolve(entry, state="unknown", lookup_at=self.began + delay)
            ready = self.began_mono + delay
        # The client's lane: other batches sharing this client never create the pair meanwhile.
        lane = self.client.create_lane(task.params) if task.op == "create" else nullcontext()
        async with lane:
            await self._drive(item, entry, stop, ready)

    async def _drive(
        self, item: Item, entry: JournalEntry, stop: anyio.Event, ready: float | None
    ) -> None:
        """Move the row until it is ok, failed or unresolved; ``ready``: see :meth:`_conclude`."""
        task = item.task
        deadline = time.monotonic() + self.options.deadline
        started = time.perf_counter()
        trace = CallTrace()
        failures = tries = 0  # transient failures; sends and lookups made in this run
        self._current[id(item)] = entry

        def stopping() -> bool:
            # The deadline bounds retries: every row gets its first try, whatever the deadline.
            late = tries > 0 and time.monotonic() > deadline
            return stop.is_set() or self.halt.is_set() or late

        while True:
            if entry.state == "unknown":
                self._current[id(item)] = entry
                if stopping():
                    self._finish(item, entry, "unresolved", error=entry.error, started=started)
                    return
                if task.op != "create":
                    # Safe to send again, but only once the lost one can no longer land: sent
                    # earlier, it would undo this one, or the next row of the session's lane.
                    await settle_until(entry.lookup_at or 0.0, ready)
                    entry = attrs.evolve(entry, state=advance("unknown", "absent"))
                    continue
                tries += 1
                try:
                    found = await self._lookup(task, entry, ready)
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
            if stopping():
                standing = self._current[id(item)]  # an update or expire lost, not yet re-sent?
                if task.op != "create" and standing.state == "unknown":
                    self._finish(item, standing, "unresolved", started=started)
                else:
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
            committed = time.monotonic()
            tries += 1
            trace.sent_at = trace.sent_mono = None
            try:
                session = await self._send_unless_stopped(task, trace, stop)
            except CalledOff:  # stopped while it waited for a connection or a rate token
                entry = attrs.evolve(entry, state=advance("sending", "not_applied"))
                await self._commit(item, entry)
                self._unprocessed(item)
                return
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
                ready = (trace.sent_mono or committed) + self.client.lookup_delay
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

    async def _commit(self, item: Item, entry: JournalEntry) -> None:
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

    async def _send_unless_stopped(
        self, task: Task, trace: CallTrace, stop: anyio.Event
    ) -> Session | None:
        """:meth:`_send`, called off (:class:`CalledOff`) if the run stops before it leaves."""
        self._sending[id(trace)] = trace
        if stop.is_set() or self.halt.is_set():  # stopped while its ``sending`` was committed
            trace.call_off()
        try:
            return await self._send(task, trace)
        finally:
            del self._sending[id(trace)]

    def _call_off_waiting(self) -> None:
        """A stop: requests still queued for a connection or a rate token never leave."""
        for trace in self._sending.values():
            trace.call_off()

    async def _send(self, task: Task, trace: CallTrace) -> Session | None:
        if task.op == "create":
            return await self.client.attempt_create(task.params, trace=trace)
        assert task.session_uuid is not None
        if task.op == "update":
            return await self.client.attempt_update(task.session_uuid, task.params, trace=trace)
        await self.client.attempt_expire(task.session_uuid, trace=trace)
        return None

    async def _lookup(self, task: Task, entry: JournalEntry, ready: float | None) -> Lookup:
        """Did this row's create make a session? By the id the server named, else by search."""
        assert entry.sent_at is not None
        return await self.client.lookup_create(
            task.params,
            sent_at=entry.sent_at,
            claimed=lambda uuid: self.journal.claimed_elsewhere(uuid, entry.key),
            not_before=entry.lookup_at,
            named=entry.session_uuid,
            ready=ready,
        )

    # -- outcomes -----------------------------------------------------------------------------

    def _stop(self, why: Any, reason: str) -> None:
        if self.summary.halted is None:
            self.summary.halted, self.summary.halt_reason = why, reason
        self.halt.set()

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
        self._current.pop(id(item), None)
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
        entry = self._current.pop(id(item), item.entry)
        if entry.state in ("sending", "unknown"):
            self._finish(item, attrs.evolve(entry, error=reason), "unresolved")
        elif entry.state in ("ok", "failed") and item.problem is None and item.task.valid:
            self._finish(item, entry, entry.state, resumed=True)
        else:
            self._unprocessed(item)

    def _unprocessed(self, item: Item) -> None:
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


def _lane(item: Item) -> str:
    task = item.task
    if item.problem is not None or not task.valid:  # never sent: nothing to order it with
        return f"row:{item.entry.key}"
    if task.op == "create":
        return create_lane(task.params)
    return f"session:{task.session_uuid}"
