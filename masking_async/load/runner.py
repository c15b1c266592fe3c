"""A whole load run: warm the pool, hold the timetable, drain, clean up, and time each phase.

Two clients talk to the server. The *measuring* one has no rate limit and no retries: the
timetable is the rate and every failure is data; its transport is timed (see ``timing``). The
*helper* one does the unmeasured work (warm-up creates, the cleanup) politely, under
``LoadTarget.rate_limit``; the cleanup retries on its own terms.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone

import anyio
import attrs

from masking_async.client import (
    AiohttpTransport,
    ClientOptions,
    Limiter,
    MaskingClient,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from masking_async.load.cleanup import (
    CleanupProgress,
    CleanupResult,
    clean_up,
    each,
    persist,
)
from masking_async.load.plan import LoadPlan
from masking_async.load.scenario import SessionPool, classify
from masking_async.load.schedule import Progress, ScheduleResult, run_schedule
from masking_async.load.timing import TimedTransport

__all__ = ["LoadResult", "LoadTarget", "run_load"]

#: Sessions made up to this long before the run may be the run's own (clocks differ a little).
_CLOCK_SKEW = timedelta(minutes=2)
#: A warm-up create throttled or failing this many times in a row ends the run.
_WARMUP_ATTEMPTS = 10


@attrs.frozen(kw_only=True)
class LoadTarget:
    """Where the load goes; no ``base_url`` means an emulator started in this process.

    ``rate_limit`` paces the helper client (warm-up and cleanup): by default the API's documented
    limit, and none for the embedded emulator, which has none.
    """

    base_url: str | None = None
    auth_id: str | None = None
    auth_token: str | None = attrs.field(default=None, repr=False)
    timeout: float = 10.0
    rate_limit: RateLimit = attrs.field(factory=RateLimit)


@attrs.frozen
class LoadResult:
    """The measured run, its cleanup, and the seconds spent in each phase."""

    schedule: ScheduleResult
    cleanup: CleanupResult
    phases: dict[str, float]
    #: The pace of warm-up and cleanup (``RateLimit.off()`` for the embedded emulator).
    helper_rate: RateLimit = attrs.field(factory=RateLimit)


def _measuring_options(plan: LoadPlan, timeout: float) -> ClientOptions:
    return ClientOptions(
        rate_limit=RateLimit.off(),
        retry=RetryPolicy.none(),
        timeouts=Timeouts(total=timeout),
        max_connections=plan.max_in_flight,
    )


@contextlib.asynccontextmanager
async def _server(target: LoadTarget) -> AsyncIterator[LoadTarget]:
    if target.base_url is not None:
        yield target
        return
    from masking_async.emulator import (
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        Emulator,
        EmulatorConfig,
    )

    async with Emulator(EmulatorConfig(rate_limit=None)) as emulator:
        yield attrs.evolve(
            target,
            base_url=emulator.base_url,
            auth_id=DEFAULT_AUTH_ID,
            auth_token=DEFAULT_AUTH_TOKEN,
            rate_limit=RateLimit.off(),
        )


async def run_load(
    plan: LoadPlan,
    target: LoadTarget | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_cleanup: Callable[[CleanupProgress], None] | None = None,
    stop: anyio.Event | None = None,
    limiter: Limiter | None = None,
) -> LoadResult:
    """Run ``plan`` against ``target``; every session made is expired after, even if cut short.

    Setting ``stop`` ends the timetable early; the drain, cleanup and figures follow as usual.
    ``limiter`` paces the load's requests (e.g. one shared with other processes of the account);
    by default nothing does but the timetable.
    """
    phases: dict[str, float] = {}
    began = time.perf_counter()
    since = datetime.now(timezone.utc) - _CLOCK_SKEW
    async with _server(target or LoadTarget()) as where:
        assert where.auth_id is not None
        assert where.auth_token is not None
        options = _measuring_options(plan, where.timeout)
        transport = TimedTransport(AiohttpTransport(where.auth_id, where.auth_token, options))
        helper_options = ClientOptions(
            rate_limit=where.rate_limit,
            retry=RetryPolicy.none(),
            timeouts=Timeouts(total=where.timeout),
        )
        async with (
            MaskingClient(
                where.auth_id,
                where.auth_token,
                base_url=where.base_url,
                options=options,
                transport=transport,
                limiter=limiter,
            ) as client,
            MaskingClient(
                where.auth_id, where.auth_token, base_url=where.base_url, options=helper_options
            ) as helper,
        ):
            pool = SessionPool(client, seed=plan.seed)
            try:
                mark = time.perf_counter()
                rng = random.Random(plan.seed)

                async def warm(_: int) -> None:
                    await persist(lambda: pool.create(helper), rng=rng, attempts=_WARMUP_ATTEMPTS)

                await each(warm, [(n,) for n in range(plan.warmup_sessions)])
                phases["warmup"] = time.perf_counter() - mark
                schedule = await run_schedule(
                    plan, pool.perform, classify, on_progress=on_progress, stop=stop
                )
                phases["load"], phases["drain"] = schedule.sending, schedule.draining
            finally:
                # Even when interrupted, leave no session behind (within a bounded time).
                mark = time.perf_counter()
                with anyio.CancelScope(shield=True):
                    cleanup = await clean_up(
                        pool,
                        helper,
                        created_since=since,
                        within=plan.cleanup_timeout,
                        on_progress=on_cleanup,
                    )
                phases["cleanup"] = time.perf_counter() - mark
    phases["total"] = time.perf_counter() - began
    rounded = {name: round(seconds, 3) for name, seconds in phases.items()}
    return LoadResult(schedule, cleanup, rounded, where.rate_limit)
