"""The running emulator: ``async with Emulator() as emu:`` serves on ``emu.base_url``.

It binds 127.0.0.1 on a free port unless told otherwise, so every test can start its own. The
store, clock, request log and config stay reachable on the object, so a test can look behind the
HTTP API (advance the clock, count arrivals, check a session whose answer was dropped); the
control plane's operations (:mod:`.control`) are methods too. With ``state_file`` the state is
loaded on start and saved on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from masking_async._serving import serve
from masking_async.emulator.app import PARSER_LIMIT, Runtime, build_app
from masking_async.emulator.calls.engine import CallEngine
from masking_async.emulator.calls.routes import register_call_routes
from masking_async.emulator.clock import Clock, ManualClock, SystemClock
from masking_async.emulator.config import EmulatorConfig
from masking_async.emulator.control import load, register_control, reset
from masking_async.emulator.faults import ActiveRule, FaultInjector, FaultRule
from masking_async.emulator.requestlog import RequestLog
from masking_async.emulator.server_limiter import RateLimiter
from masking_async.emulator.snapshot import SnapshotError, dump_state
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
            self.clock,
            self.config.accounts,
            self.config.pool,
            seed=self.config.seed,
            retention=self.config.retention,
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
            faults=FaultInjector(
                self.config.faults, self.config.fault_rules, seed=self.config.seed
            ),
            log=self.request_log,
            admin_token=self.config.admin_token,
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

    # -- the control plane, from Python (the same operations as under /emulator/) -------------

    def reset(self, auth_id: str | None = None) -> None:
        """Forget sessions, rate-limit history and logged requests, of one account or all."""
        reset(self._runtime, auth_id)

    def dump_state(self) -> dict[str, Any]:
        """The whole state as a JSON-ready dict (format: :mod:`.snapshot`)."""
        return dump_state(self.store)

    def load_state(self, document: Mapping[str, Any]) -> None:
        """Replace the state of the accounts the document names (``SnapshotError`` if invalid)."""
        load(self._runtime, document)

    def advance_clock(self, seconds: float) -> None:
        """Move a manual clock forward; the system clock cannot be moved (``TypeError``)."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("only a ManualClock can be advanced (use --clock manual)")
        self.clock.advance(seconds)

    # -- fault rules at runtime ---------------------------------------------------------------

    def add_fault(self, rule: FaultRule) -> ActiveRule:
        """Install a fault rule after the others; the returned rule carries its ``id``."""
        return self._runtime.faults.add(rule)

    def fault_rules(self) -> list[ActiveRule]:
        """The installed rules in draw order, each with its ``id`` and ``hits`` so far."""
        return self._runtime.faults.rules()

    def remove_fault(self, rule_id: int) -> bool:
        """Remove one rule; ``False`` when no rule has that id."""
        return self._runtime.faults.remove(rule_id)

    def clear_faults(self) -> None:
        """Remove every fault rule (latency and jitter from the config stay)."""
        self._runtime.faults.clear()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._runtime.closing = asyncio.Event()
        state_file = self.config.state_file
        if state_file is not None and state_file.exists():
            try:
                self.load_state(json.loads(state_file.read_text()))
            except ValueError as exc:  # not JSON, or not a state document
                raise SnapshotError(f"state file {state_file}: {exc}") from None
        app = build_app(self._runtime)
        register_control(app)
        register_call_routes(app, self.calls)
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_SECONDS,
            # A client that hangs up must not cancel its request: a stalled request is still
            # applied, as on a real server that keeps working after the client gave up.
            handler_cancellation=False,
            max_line_size=PARSER_LIMIT,
            max_field_size=PARSER_LIMIT,
        )
        self._port = await serve(runner, self.config.host, self.config.port)
        self._runner = runner
        await self.calls.start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._runtime.closing.set()
            await self.calls.stop()
            await runner.cleanup()
            if self.config.state_file is not None:
                _save(self.config.state_file, self.dump_state())
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
        """Serve until Ctrl-C or SIGTERM (the CLI); print ``ready`` formatted with ``base_url``.

        Either signal stops the emulator cleanly, so ``state_file`` is saved.
        """

        async def serve() -> None:
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                loop.add_signal_handler(signal.SIGTERM, stopping.set)
            async with self:
                if ready is not None:
                    print(ready.format(base_url=self.base_url), flush=True)
                with contextlib.suppress(asyncio.CancelledError):
                    await stopping.wait()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())


def _save(path: Path, document: Mapping[str, Any]) -> None:
    """Write the state atomically: a crash mid-write leaves the previous file intact."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=1))
    os.replace(partial, path)
