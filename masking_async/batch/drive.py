"""Driving one row to its outcome: do what :func:`~.rowstate.step` says, report what it found.

Every decision is in :data:`~.rowstate.STEPS`. This module only acts: a send or a lookup holds one
of the run's workers (the scarce thing: requests in flight), a wait holds nothing (the row sleeps
on its own timer, so a thousand rows waiting for their lookups stop no other row), and each move
of the row is committed to the journal before the next action.

A send commits ``sending`` with the moment it leaves (after it got a connection and a rate
token, see ``CallTrace.departing``), so a resume after a crash waits only for rows whose last
send is younger than ``timeout + settle``, and for no others.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Final, Literal

import anyio
import attrs

from masking_async.batch.intake import Item
from masking_async.batch.journal import Journal, JournalEntry
from masking_async.batch.options import BatchOptions, SessionAPI
from masking_async.batch.progress import Gauges
from masking_async.batch.rowstate import Action, Kind, Outcome, Wait, advance, step
from masking_async.batch.summary import Halt
from masking_async.client import CalledOff, CallTrace, maybe_applied, retry_delay
from masking_async.errors import (
    APIError,
    AuthenticationError,
    ConnectError,
    MaskingError,
    OutcomeUnknownError,
    PoolTimeout,
    RateLimitedError,
    ServerError,
    TransportError,
)
from masking_async.models import Session

__all__ = ["Ending", "Shared", "drive"]

#: 5xx answers from a gateway that gave up waiting: the server behind it may still be working.
_STILL_RUNNING: Final = frozenset({502, 504})
#: The actions that end a row, and how the run reports each.
_ENDINGS: Final[frozenset[Action]] = frozenset({"ok", "failed", "unresolved", "unprocessed"})


@attrs.define
class Shared:
    """What every row's driver shares with its run."""

    client: SessionAPI
    journal: Journal
    options: BatchOptions
    #: Requests in flight (sends and lookups); a waiting row holds none. A semaphore taken
    #: without a yield when one is free (``fast_acquire``): most rows never wait for one.
    workers: anyio.Semaphore
    #: The caller's stop (Ctrl-C), and the run's own signal, set on a stop or a halt: waits end,
    #: nothing new is sent. Both are read, so a row never sends between a stop and its signal.
    stop: anyio.Event
    stopping: anyio.Event
    gauges: Gauges
    #: When this run took the journal, on both clocks: a crashed run was alive no later.
    began: float
    began_mono: float
    halt: Callable[[Halt, str], None]
    #: Where each row in flight stands, committed (a stop reports it from here).
    current: dict[int, JournalEntry] = attrs.field(factory=dict)
    #: The calls of rows sending now: a stop calls off those that have not left yet.
    sending: dict[int, CallTrace] = attrs.field(factory=dict)
    #: The rows holding a worker now (by ``id``): never one that waits.
    holding: set[int] = attrs.field(factory=set)
    rng: random.Random = attrs.field(factory=random.Random)

    def stopped(self) -> bool:
        return self.stop.is_set() or self.stopping.is_set()


@attrs.frozen
class Ending:
    """How a row ended: ``ok``, ``failed``, ``unresolved`` or ``unprocessed``; ``resumed``: as an
    earlier run concluded it."""

    outcome: str
    entry: JournalEntry
    resumed: bool
    #: ``perf_counter`` when it first held a worker (None: it never did): a row's time counts
    #: from there, as a request's would, not from its wait among the rows read ahead.
    began: float | None = None


@attrs.define(eq=False)  # by identity: ``Shared.holding`` knows it by its id
class _Row:
    """One row in flight: its journal entry and what this process knows of its times."""

    item: Item
    entry: JournalEntry
    kind: Kind
    deadline: float
    #: Monotonic time its last request left, and from when "none found" is conclusive: kept on
    #: the monotonic clock, which a step of the wall clock cannot bring forward.
    sent: float | None = None
    ready: float | None = None
    failures: int = 0
    tries: int = 0
    error: MaskingError | None = None
    began: float | None = None


async def drive(shared: Shared, item: Item, entry: JournalEntry, retry: bool) -> Ending:
    """Move ``item`` from ``entry`` until it ends; ``retry``: send a ``failed`` row again."""
    kind: Kind = "create" if item.task.op == "create" else "change"
    row = _Row(item, entry, kind, time.monotonic() + shared.options.deadline)
    shared.current[id(item)] = entry
    outcome: Outcome = "retry" if retry else "start"
    if retry:
        row.entry = attrs.evolve(entry, status=None, error=None)
    if entry.state in ("sending", "unknown"):
        _resumed_times(shared, row)
    try:
        while True:
            event, wait, action = step(kind, row.entry.state, outcome)
            if event is not None:
                row.entry = attrs.evolve(row.entry, state=advance(row.entry.state, event))
                await _commit(shared, row)
            # A worker is held from an action until what it found is on disk, no longer.
            _release(shared, row)
            if action in _ENDINGS:
                return Ending(action, row.entry, resumed=outcome == "start", began=row.began)
            if action == "halt":
                shared.halt("auth", f"the server refused the credentials ({row.entry.status})")
                outcome = "stopped"
                continue
            if not await _wait(shared, row, wait, action):
                outcome = "stopped"
                continue
            if action == "resend":
                row.entry = attrs.evolve(row.entry, state=advance(row.entry.state, "absent"))
                await _commit(shared, row)
            await shared.workers.acquire()
            shared.holding.add(id(row))
            row.began = row.began or time.perf_counter()
            outcome = await (_look(shared, row) if action == "look" else _send(shared, row))
    finally:
        _release(shared, row)


def _release(shared: Shared, row: _Row) -> None:
    if id(row) in shared.holding:
        shared.holding.discard(id(row))
        shared.workers.release()


def _resumed_times(shared: Shared, row: _Row) -> None:
    """A row an earlier run left ``sending`` or ``unknown``: from when is "none found" conclusive?

    Journals that record when each request left give it; in an older one, ``sent_at`` is when the
    row was queued, and the request may have left at any moment up to the crash, which was no
    later than this run's start.
    """
    entry, delay = row.entry, shared.client.lookup_delay
    sent = entry.sent_at
    if sent is None or (entry.state == "sending" and not shared.journal.exact_departures):
        sent, row.ready = shared.began, shared.began_mono + delay
    row.entry = attrs.evolve(
        entry, sent_at=sent, lookup_at=max(entry.lookup_at or 0.0, sent + delay)
    )


# -- waiting ------------------------------------------------------------------------------------


def _wake(shared: Shared, row: _Row, wait: Wait) -> tuple[float, float]:
    """When a wait ends: (monotonic, wall clock); both must have passed."""
    now, wall = time.monotonic(), time.time()
    entry = row.entry
    if wait == "early":
        if row.sent is not None:
            return row.sent + shared.client.settle, 0.0
        return now, (entry.sent_at or 0.0) + shared.client.settle
    if wait == "conclusive":
        return row.ready or now, entry.lookup_at or wall
    if wait == "backoff" and row.error is not None:
        return now + retry_delay(
            shared.options.retry, max(1, row.failures), row.error, shared.rng
        ), 0.0
    return now, 0.0


async def _wait(shared: Shared, row: _Row, wait: Wait, action: Action) -> bool:
    """Sleep until the step's moment, holding nothing; False if the run stops or the row's
    deadline comes first (honoured to the second; every row gets its first try)."""
    assert id(row) not in shared.holding, "a waiting row must hold no worker"
    if shared.stopped():
        return False
    mono, wall = _wake(shared, row, wait)
    delay = max(mono - time.monotonic(), wall - time.time(), 0.0)
    late = row.tries > 0 and time.monotonic() + delay > row.deadline
    if late:
        delay = max(0.0, row.deadline - time.monotonic())
    if delay <= 0:
        return not late
    gauge: Literal["looking", "backing_off"] = "looking" if action == "look" else "backing_off"
    shared.gauges.add(gauge, 1)
    try:
        with anyio.move_on_after(delay):
            await shared.stopping.wait()
            return False
    finally:
        shared.gauges.add(gauge, -1)
    return not late


# -- acting -------------------------------------------------------------------------------------


async def _commit(shared: Shared, row: _Row) -> None:
    """Store the row's entry; only once it is on disk is it where the row stands."""
    await shared.journal.commit(row.entry)
    shared.current[id(row.item)] = row.entry


async def _send(shared: Shared, row: _Row) -> Outcome:
    """One send (a 429 is waited out inside the client); what it found."""
    client, task = shared.client, row.item.task
    trace = CallTrace()

    async def departing(at: float) -> None:
        if shared.stopped():  # the run stopped while this one waited for its turn to leave
            trace.call_off()
            return
        entry = row.entry
        state = advance(entry.state, "send") if entry.state == "pending" else entry.state
        row.entry = attrs.evolve(
            entry,
            state=state,
            sent_at=at,
            lookup_at=at + client.lookup_delay,
            attempts=entry.attempts + 1,
            candidates=(),
        )
        if shared.journal.durable:  # for a resume after a crash: a temporary journal has none
            await _commit(shared, row)
        else:
            shared.current[id(row.item)] = row.entry
        row.sent, row.ready = time.monotonic(), None

    trace.departing = departing
    shared.sending[id(trace)] = trace
    if shared.stopped():
        trace.call_off()
    row.tries += 1
    try:
        if task.op == "create":
            session: Session | None = await client.attempt_create(task.params, trace=trace)
        elif task.op == "update":
            assert task.session_uuid is not None
            session = await client.attempt_update(task.session_uuid, task.params, trace=trace)
        else:
            assert task.session_uuid is not None
            await client.attempt_expire(task.session_uuid, trace=trace)
            session = None
    except CalledOff:
        return "called_off"
    except MaskingError as error:
        return _failed_send(shared, row, error, trace)
    finally:
        del shared.sending[id(trace)]
    row.entry = _applied(row.entry, session, trace.last_status, adopted=False)
    return "applied"


def _failed_send(shared: Shared, row: _Row, error: MaskingError, trace: CallTrace) -> Outcome:
    """What a failed send says about the server, with the entry updated to match."""
    row.error = error
    status = error.status if isinstance(error, APIError) else None
    named = error.session_uuid if isinstance(error, OutcomeUnknownError) else None
    row.entry = attrs.evolve(
        row.entry,
        status=status,
        error=(error.message if isinstance(error, APIError) else str(error))
        or type(error).__name__,
        session_uuid=named or row.entry.session_uuid,
    )
    if isinstance(error, AuthenticationError):
        return "credentials"
    if isinstance(error, (ConnectError, PoolTimeout, RateLimitedError)):
        row.failures += 1
        return "not_sent"
    if not maybe_applied(error):
        return "refused"
    row.failures += 1
    lost = isinstance(error, TransportError) or (
        isinstance(error, ServerError) and error.status in _STILL_RUNNING
    )
    if lost:  # it may still be running at the server: conclusive once it can no longer land
        row.ready = (row.sent or time.monotonic()) + shared.client.lookup_delay
    else:  # answered: the server has finished with it, and had ``settle`` to show its session
        row.ready = time.monotonic() + shared.client.settle
        row.entry = attrs.evolve(row.entry, lookup_at=time.time() + shared.client.settle)
    return "lost" if lost else "finished"


async def _look(shared: Shared, row: _Row) -> Outcome:
    """Did this row's create make a session? By the id the server named, else by search."""
    entry = row.entry
    assert entry.sent_at is not None
    conclusive = time.monotonic() >= (row.ready or 0.0) and time.time() >= (entry.lookup_at or 0.0)
    row.tries += 1
    try:
        found = await shared.client.find_created(
            row.item.task.params,
            sent_at=entry.sent_at,
            claimed=lambda uuid: shared.journal.claimed_elsewhere(uuid, entry.key),
            named=entry.session_uuid,
        )
    except AuthenticationError as error:
        row.entry = attrs.evolve(entry, status=error.status, error=f"lookup refused: {error}")
        return "credentials"
    except MaskingError as error:
        row.failures += 1
        row.error = error
        row.entry = attrs.evolve(entry, error=f"lookup failed: {error}")
        return "look_failed"
    if found.session is not None:
        row.entry = _applied(entry, found.session, None, adopted=True)
        return "found"
    if found.ambiguous:
        row.entry = attrs.evolve(
            entry,
            candidates=found.candidates,
            error=f"{len(found.candidates)} sessions match this create; none adopted",
        )
        return "several"
    return "none" if conclusive else "none_yet"


def _applied(
    entry: JournalEntry, session: Session | None, status: int | None, *, adopted: bool
) -> JournalEntry:
    return attrs.evolve(
        entry,
        session_uuid=session.session_uuid if session else entry.session_uuid,
        virtual_number=session.virtual_number if session else entry.virtual_number,
        adopted=adopted,
        status=status,
        error=None,
        candidates=(),
    )
