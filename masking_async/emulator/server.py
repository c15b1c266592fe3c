"""The running emulator: ``async with Emulator() as emu:`` serves on ``emu.base_url``.

It binds 127.0.0.1 on a free port unless told otherwise, so every test can start its own. The
store, clock, request log and config stay reachable on the object, so a test can look behind the
HTTP API (advance the clock, count arrivals, check a session whose answer was dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from aiohttp import web

from masking_async.emulator.app import Runtime, build_app
from masking_async.emulator.calls_engine import CallEngine
from masking_async.emulator.calls_http import register_call_routes
from masking_async.emulator.clock import Clock, SystemClock
from masking_async.emulator.config import EmulatorConfig
from masking_async.emulator.faults import FaultInjector
from masking_async.emulator.limits import RateLimiter
from masking_async.emulator.requestlog import RequestLog
from masking_async.emulator.store import Store

__all__ = ["Emulator"]

#: How long shutdown waits for requests still being answered (stalls end at once on shutdown).
_SHUTDOWN_SECONDS = 2.0


class Emulator:
    """A Masking API emulator on a local port; start it with ``async with`` or :meth:`run`."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.store = Store(
            self.clock, self.config.accounts, self.config.pool, seed=self.config.seed
        )
        self.request_log = RequestLog(self.config.request_log_size)
        #: Calls, phones and callback deliveries (see ``docs/callbacks.md``).
        self.calls = CallEngine(
            self.store,
            self.clock,
            self.config.calls,
            (account.auth_id for account in self.config.accounts),
            self.config.seed,
        )
        self._runtime = Runtime(
            store=self.store,
            clock=self.clock,
            limiter=RateLimiter(self.config.rate_limit, self.clock),
            faults=FaultInjector(self.config.faults),
            log=self.request_log,
        )
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running: use 'async with Emulator() as emu'")
        return self._port

    @property
    def base_url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8180``; API paths start with ``/v1/``."""
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._runtime.closing = asyncio.Event()
        app = build_app(self._runtime)
        register_call_routes(app, self.calls)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = _bound_port(runner)
        await self.calls.start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._runtime.closing.set()
            await self.calls.stop()
            await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def run(self, *, ready: str | None = None) -> None:
        """Serve until interrupted (the CLI); print ``ready`` formatted with ``base_url``."""

        async def serve() -> None:
            async with self:
                if ready is not None:
                    print(ready.format(base_url=self.base_url), flush=True)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError(f"the emulator bound no TCP address: {runner.addresses!r}")
