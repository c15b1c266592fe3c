"""A whole load run: warm the pool, hold the timetable, clean up, report."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import anyio
import attrs

from masking_async.client import (
    ClientOptions,
    Limiter,
    MaskingClient,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from masking_async.load.plan import LoadPlan
from masking_async.load.scenario import SessionPool, classify
from masking_async.load.schedule import Progress, ScheduleResult, run_schedule

__all__ = ["LoadTarget", "run_load"]

_CLEANUP_SECONDS = 120


@attrs.frozen(kw_only=True)
class LoadTarget:
    """Where the load goes; no ``base_url`` means an emulator started in this process."""

    base_url: str | None = None
    auth_id: str | None = None
    auth_token: str | None = attrs.field(default=None, repr=False)
    timeout: float = 10.0


def _measuring_options(plan: LoadPlan, timeout: float) -> ClientOptions:
    """The timetable is the rate and every failure is data: no client limit, no retries."""
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
        )


async def run_load(
    plan: LoadPlan,
    target: LoadTarget | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    limiter: Limiter | None = None,
) -> ScheduleResult:
    """Run ``plan`` against ``target`` and return the figures; sessions made are expired after.

    ``limiter`` paces the load's requests (e.g. one shared with other processes of the account);
    by default nothing does but the timetable, and a 429 only pauses.
    """
    async with (
        _server(target or LoadTarget()) as where,
        MaskingClient(
            where.auth_id,
            where.auth_token,
            base_url=where.base_url,
            options=_measuring_options(plan, where.timeout),
            limiter=limiter,
        ) as client,
        MaskingClient(where.auth_id, where.auth_token, base_url=where.base_url) as cleaner,
    ):
        pool = SessionPool(client, seed=plan.seed)
        for _ in range(plan.warmup_sessions):
            await pool.create()
        try:
            return await run_schedule(plan, pool.perform, classify, on_progress=on_progress)
        finally:
            # Even when interrupted, leave no session behind (within a bounded time).
            with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await pool.cleanup(cleaner)
