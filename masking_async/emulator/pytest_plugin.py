"""pytest fixtures that start a Masking API emulator per test (registered as a pytest11 plugin).

``masking_emulator`` is a running :class:`Emulator` on a free 127.0.0.1 port with a
:class:`ManualClock` (advance it instead of sleeping) and no rate limit.
``masking_emulator_factory`` starts more, each with its own config, all stopped at teardown::

    async def test_throttled(masking_emulator_factory):
        emu = await masking_emulator_factory(EmulatorConfig(rate_limit=ServerRateLimit(2, 1.0)))

The fixtures are async; they need pytest-asyncio (``asyncio_mode = "auto"`` or the marker).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Protocol

import pytest

from masking_async.emulator.clock import Clock, ManualClock
from masking_async.emulator.config import EmulatorConfig
from masking_async.emulator.server import Emulator

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio the fixtures are plain ones
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["EmulatorFactory", "masking_emulator", "masking_emulator_factory"]

#: What ``masking_emulator`` starts with: the defaults, less the rate limit.
TEST_CONFIG = EmulatorConfig(rate_limit=None)


class EmulatorFactory(Protocol):
    """``await factory(config=None, *, clock=None)``: a started emulator, stopped at teardown."""

    def __call__(
        self, config: EmulatorConfig | None = None, *, clock: Clock | None = None
    ) -> Awaitable[Emulator]: ...


@_async_fixture
async def masking_emulator_factory() -> AsyncIterator[EmulatorFactory]:
    """Start emulators with any config (default: no rate limit) and a ManualClock unless given."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            config: EmulatorConfig | None = None, *, clock: Clock | None = None
        ) -> Emulator:
            emulator = Emulator(config or TEST_CONFIG, clock=clock or ManualClock())
            return await stack.enter_async_context(emulator)

        yield start


@_async_fixture
async def masking_emulator(masking_emulator_factory: EmulatorFactory) -> Emulator:
    """A running emulator: default account, ManualClock, no rate limit, no faults."""
    return await masking_emulator_factory()
