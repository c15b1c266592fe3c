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
    recorder = Recorder(interval=plan.series_interval)
    sending_done = False
    slots = anyio.Semaphore(plan.max_in_flight)
    sent = late = in_flight = 0
    max_lag = lag = 0.0
    drained = anyio.Event()  # set by the last request to finish, once all have been sent

    async def one(op: str, due: float, called: float) -> None:
        nonlocal in_flight
        error: str | None = None
        measure = CallTiming()
        try:
            await perform(op, measure)
        except Exception as exc:
            error = classify(exc)
        finally:
            slots.release()
            in_flight -= 1
        end = clock()
        recorder.record(
            op,
            end - due,
            error,
            server=measure.wire if measure.sent else None,
            queued=max(0.0, end - called - measure.wire),
            at=end - start,
        )
        if in_flight == 0 and sending_done:
            drained.set()

    async def report() -> None:
        assert on_progress is not None
        while True:
            await anyio.sleep(progress_every)
            on_progress(
                Progress(
                    clock() - start,
                    sent,
                    recorder.completed,
                    recorder.failed,
                    recorder.throttled,
                    lag,
                )
            )

    start = clock()
    async with anyio.create_task_group() as outer:
        if on_progress is not None:
            outer.start_soon(report, name="load progress")
        async with anyio.create_task_group() as senders:
            for offset, op in zip(plan.timetable.offsets(), _operations(plan), strict=False):
                due = start + offset
                recorder.due(offset)
                wait = due - clock()
                if wait > 0 and stop is not None:
                    with anyio.move_on_after(wait):
                        await stop.wait()
                elif wait > 0:
                    await anyio.sleep(wait)
                if stop is not None and stop.is_set():
                    break
                await slots.acquire()  # all slots busy: the sender stalls and falls behind
                called = clock()
                lag = max(0.0, called - due)
                max_lag = max(max_lag, lag)
                late += lag > plan.lag_tolerance
                sent += 1
                in_flight += 1
                senders.start_soon(one, op, due, called)
            sending, sending_done = clock() - start, True
            # Wait for the stragglers, but not for ever: what is left then is cut.
            if in_flight:
                with anyio.move_on_after(plan.grace):
                    await drained.wait()
            senders.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    return ScheduleResult(
        recorder=recorder,
        plan=plan,
        sending=sending,
        draining=clock() - start - sending,
        sent=sent,
        max_lag=max_lag,
        late=late,
        stopped=stop is not None and stop.is_set(),
    )
