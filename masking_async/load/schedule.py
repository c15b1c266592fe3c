"""An open-model load generator: requests start on a timetable, whatever the server does.

Request ``i`` is due at the timetable's ``i``-th offset (``i / rate`` for a constant rate). Its
latency is measured from that due time, not from when it was actually sent, so a server that
stalls the sender (all slots busy) cannot hide its tail: the requests it delayed are charged the
delay, as wrk2, vegeta and k6 do. When the sender itself falls behind the timetable by more than
the plan's tolerance, the run says so. Requests still unanswered ``grace`` seconds after the last
one was sent are cut and counted as interrupted (k6's ``gracefulStop``), so a stalled server
cannot stretch the run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
import attrs
from anyio.abc import TaskGroup

from masking_async.load.plan import LoadPlan
from masking_async.load.recorder import Recorder
from masking_async.load.timing import CallTiming

__all__ = ["Perform", "Progress", "ScheduleResult", "run_schedule"]

#: Runs one operation, adding its wire time to the timing; raises on failure.
Perform = Callable[[str, CallTiming], Awaitable[None]]
Classify = Callable[[BaseException], str]
#: From this share of failed requests (429s apart), the asked load counts as not delivered.
FAILED_LIMIT = 1 / 3


@attrs.frozen
class Progress:
    """A snapshot for live output."""

    elapsed: float
    sent: int
    completed: int
    failed: int
    throttled: int
    lag: float


@attrs.frozen
class ScheduleResult:
    """How the timetable was kept: the recorder has the latencies."""

    recorder: Recorder
    plan: LoadPlan
    #: Seconds from the first due time to the last request sent, then to the end of the drain.
    sending: float
    draining: float
    sent: int
    max_lag: float
    late: int
    #: Ended early by ``stop`` (Ctrl-C) before the timetable's end.
    stopped: bool = False

    @property
    def elapsed(self) -> float:
        return self.sending + self.draining

    @property
    def asked_rate(self) -> float:
        return self.plan.timetable.mean_rate

    @property
    def achieved_rate(self) -> float:
        """Requests answered (any way but 429) per second of the asked duration."""
        answered = self.recorder.completed - self.recorder.throttled
        return answered / max(self.plan.timetable.duration, self.sending, 1e-9)

    @property
    def interrupted(self) -> int:
        return self.sent - self.recorder.completed

    @property
    def refused_share(self) -> float:
        """Requests refused with 429 over requests sent."""
        return self.recorder.throttled / self.sent if self.sent else 0.0

    @property
    def failed_share(self) -> float:
        """Requests that did not succeed (any kind, cut ones included) over requests sent."""
        return (self.recorder.failed + self.interrupted) / self.sent if self.sent else 0.0

    @property
    def not_kept_up(self) -> list[str]:
        """Why the asked load was not delivered; empty when it was."""
        reasons = []
        if self.stopped:
            reasons.append(
                f"stopped early: {self.sent} of {self.plan.total_requests} requests were sent"
            )
        if self.late:
            reasons.append(
                f"the generator fell behind: {self.late} requests left more than "
                f"{self.plan.lag_tolerance * 1000:.0f} ms late (max lag {self.max_lag * 1000:.0f}"
                " ms); raise --max-in-flight or lower the rate"
            )
        if self.recorder.throttled:
            reasons.append(
                f"the server throttled the asked rate: {self.recorder.throttled} of {self.sent}"
                f" requests refused with 429 ({self.refused_share:.1%})"
            )
        others = self.recorder.failed - self.recorder.throttled + self.interrupted
        if self.sent and others / self.sent >= FAILED_LIMIT:
            reasons.append(
                f"{others} of {self.sent} requests failed or were cut: the run measured failures,"
                " not the service"
            )
        return reasons

    @property
    def kept_up(self) -> bool:
        """False when the sender fell behind or the server refused part of the asked rate."""
        return not self.not_kept_up


def _operations(plan: LoadPlan) -> Iterator[str]:
    names = [name for name, weight in plan.mix.items() if weight > 0]
    weights = [plan.mix[name] for name in names]
    rng = random.Random(plan.seed)
    while True:
        yield rng.choices(names, weights)[0]


@attrs.define
class _Timetable:
    """One run of the timetable: the sender's counters and the requests in flight.

    The sender and every request share these counters; keeping them on one object (rather than
    in a closure's ``nonlocal`` names) lets each step of the run be a method of its own.
    """

    plan: LoadPlan
    perform: Perform
    classify: Classify
    clock: Callable[[], float]
    stop: anyio.Event | None
    recorder: Recorder
    slots: anyio.Semaphore
    #: Set by the last request to finish, once all have been sent.
    drained: anyio.Event = attrs.field(factory=anyio.Event)
    start: float = 0.0
    sending: float = 0.0
    sending_done: bool = False
    sent: int = 0
    late: int = 0
    in_flight: int = 0
    lag: float = 0.0
    max_lag: float = 0.0

    async def send_all(self, senders: TaskGroup) -> None:
        """Start each request at its due time until the timetable ends or ``stop`` is set."""
        plan = self.plan
        for offset, op in zip(plan.timetable.offsets(), _operations(plan), strict=False):
            due = self.start + offset
            self.recorder.due(offset)
            await self._wait_until(due)
            if self.stop is not None and self.stop.is_set():
                break
            await self.slots.acquire()  # all slots busy: the sender stalls and falls behind
            called = self.clock()
            self._count_sent(due, called)
            senders.start_soon(self._call, op, due, called)

    async def _wait_until(self, due: float) -> None:
        """Sleep until ``due``, waking early when ``stop`` is set so Ctrl-C is not delayed."""
        wait = due - self.clock()
        if wait > 0 and self.stop is not None:
            with anyio.move_on_after(wait):
                await self.stop.wait()
        elif wait > 0:
            await anyio.sleep(wait)

    def _count_sent(self, due: float, called: float) -> None:
        """Count one request as sent, and how late it left: the lag is what the run reports."""
        self.lag = max(0.0, called - due)
        self.max_lag = max(self.max_lag, self.lag)
        self.late += self.lag > self.plan.lag_tolerance
        self.sent += 1
        self.in_flight += 1

    async def _call(self, op: str, due: float, called: float) -> None:
        """Perform one request and record it, its latency charged from its due time."""
        error: str | None = None
        measure = CallTiming()
        try:
            await self.perform(op, measure)
        except Exception as exc:
            error = self.classify(exc)
        finally:
            self.slots.release()
            self.in_flight -= 1
        end = self.clock()
        self.recorder.record(
            op,
            end - due,
            error,
            server=measure.wire if measure.sent else None,
            queued=max(0.0, end - called - measure.wire),
            at=end - self.start,
        )
        if self.in_flight == 0 and self.sending_done:
            self.drained.set()

    async def drain(self) -> None:
        """Mark the sending done, then wait for the stragglers, but not for ever.

        What is still unanswered after the plan's grace is cut by the caller's cancel.
        """
        self.sending, self.sending_done = self.clock() - self.start, True
        if self.in_flight:
            with anyio.move_on_after(self.plan.grace):
                await self.drained.wait()

    async def report(self, on_progress: Callable[[Progress], None], every: float) -> None:
        """Hand a snapshot to ``on_progress`` every ``every`` seconds, until cancelled."""
        while True:
            await anyio.sleep(every)
            on_progress(
                Progress(
                    self.clock() - self.start,
                    self.sent,
                    self.recorder.completed,
                    self.recorder.failed,
                    self.recorder.throttled,
                    self.lag,
                )
            )

    def result(self) -> ScheduleResult:
        """How the timetable was kept, measured now that the drain is over."""
        return ScheduleResult(
            recorder=self.recorder,
            plan=self.plan,
            sending=self.sending,
            draining=self.clock() - self.start - self.sending,
            sent=self.sent,
            max_lag=self.max_lag,
            late=self.late,
            stopped=self.stop is not None and self.stop.is_set(),
        )


async def run_schedule(
    plan: LoadPlan,
    perform: Perform,
    classify: Classify,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 1.0,
    clock: Callable[[], float] = time.perf_counter,
    stop: anyio.Event | None = None,
) -> ScheduleResult:
    """Send the plan's requests on its timetable and record how they fared.

    Setting ``stop`` ends the sending early (Ctrl-C); the answers in flight are drained as usual.
    """
    run = _Timetable(
        plan=plan,
        perform=perform,
        classify=classify,
        clock=clock,
        stop=stop,
        recorder=Recorder(interval=plan.series_interval),
        slots=anyio.Semaphore(plan.max_in_flight),
    )
    run.start = clock()
    async with anyio.create_task_group() as outer:
        if on_progress is not None:
            outer.start_soon(run.report, on_progress, progress_every, name="load progress")
        async with anyio.create_task_group() as senders:
            await run.send_all(senders)
            await run.drain()
            senders.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    return run.result()
