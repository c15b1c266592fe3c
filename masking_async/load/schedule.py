"""An open-model load generator: requests start on a fixed timetable, whatever the server does.

Request ``i`` is due at ``start + i / rate``. Its latency is measured from that due time, not from
when it was actually sent, so a server that stalls the sender (all slots busy) cannot hide its tail:
the requests it delayed are charged the delay, as wrk2, vegeta and k6 do. When the sender itself
falls behind the timetable by more than the plan's tolerance, the run says so.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
import attrs

from masking_async.load.plan import LoadPlan
from masking_async.load.recorder import Recorder

__all__ = ["Perform", "Progress", "ScheduleResult", "run_schedule"]

#: Runs one operation; raises on failure. ``classify`` names the failure's kind.
Perform = Callable[[str], Awaitable[None]]
Classify = Callable[[BaseException], str]


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
    asked_rate: float
    elapsed: float
    sent: int
    max_lag: float
    late: int

    @property
    def achieved_rate(self) -> float:
        return self.recorder.completed / self.elapsed if self.elapsed else 0.0

    @property
    def kept_up(self) -> bool:
        """False when requests left later than the tolerance allows: the figures undercount."""
        return self.late == 0


def _operations(plan: LoadPlan) -> Iterator[str]:
    names = [name for name, weight in plan.mix.items() if weight > 0]
    weights = [plan.mix[name] for name in names]
    rng = random.Random(plan.seed)
    for _ in range(plan.total_requests):
        yield rng.choices(names, weights)[0]


async def run_schedule(
    plan: LoadPlan,
    perform: Perform,
    classify: Classify,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 1.0,
    clock: Callable[[], float] = time.perf_counter,
) -> ScheduleResult:
    """Send ``plan.total_requests`` operations at ``plan.rate`` and record how they fared."""
    recorder = Recorder()
    slots = anyio.Semaphore(plan.max_in_flight)
    interval = 1.0 / plan.rate
    sent = late = 0
    max_lag = lag = 0.0

    async def one(op: str, due: float) -> None:
        error: str | None = None
        try:
            await perform(op)
        except Exception as exc:
            error = classify(exc)
        finally:
            slots.release()
        recorder.record(op, clock() - due, error)

    async def report(start: float) -> None:
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
            outer.start_soon(report, start)
        async with anyio.create_task_group() as senders:
            for index, op in enumerate(_operations(plan)):
                due = start + index * interval
                wait = due - clock()
                if wait > 0:
                    await anyio.sleep(wait)
                await slots.acquire()  # all slots busy: the sender stalls and falls behind
                lag = max(0.0, clock() - due)
                max_lag = max(max_lag, lag)
                late += lag > plan.lag_tolerance
                sent += 1
                senders.start_soon(one, op, due)
        outer.cancel_scope.cancel()
    return ScheduleResult(
        recorder=recorder,
        asked_rate=plan.rate,
        elapsed=clock() - start,
        sent=sent,
        max_lag=max_lag,
        late=late,
    )
