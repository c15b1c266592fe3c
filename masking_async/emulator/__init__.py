"""A local emulator of the Masking Session API, for tests, demos, benchmarks and load tests.

::

    async with Emulator(EmulatorConfig(rate_limit=None), clock=ManualClock()) as emu:
        ...  # talk to emu.base_url as DEFAULT_AUTH_ID / DEFAULT_AUTH_TOKEN
        emu.clock.advance(3600)  # every hour-long session is now expired

See ``docs/emulator.md`` for the behaviour it chooses where the spec is silent.
"""

from masking_async.emulator.calls.call import Call, Leg, LegState
from masking_async.emulator.calls.config import CallsConfig, DeliveryPolicy, Phone, Tariff
from masking_async.emulator.calls.engine import CallEngine
from masking_async.emulator.clock import DEFAULT_START, Clock, ManualClock, SystemClock
from masking_async.emulator.config import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    OPERATIONS,
    Account,
    EmulatorConfig,
    Faults,
    PoolConfig,
    ServerRateLimit,
    default_numbers,
)
from masking_async.emulator.faults import ActiveRule, FaultKind, FaultPhase, FaultRule
from masking_async.emulator.listing import Page
from masking_async.emulator.records import (
    InvalidOperation,
    SessionNotFound,
    SessionRecord,
    StoreError,
)
from masking_async.emulator.requestlog import RequestLog, RequestLogEntry
from masking_async.emulator.server import Emulator
from masking_async.emulator.store import Store

__all__ = [
    "DEFAULT_AUTH_ID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_START",
    "OPERATIONS",
    "Account",
    "ActiveRule",
    "Call",
    "CallEngine",
    "CallsConfig",
    "Clock",
    "DeliveryPolicy",
    "Emulator",
    "EmulatorConfig",
    "FaultKind",
    "FaultPhase",
    "FaultRule",
    "Faults",
    "InvalidOperation",
    "Leg",
    "LegState",
    "ManualClock",
    "Page",
    "Phone",
    "PoolConfig",
    "RequestLog",
    "RequestLogEntry",
    "ServerRateLimit",
    "SessionNotFound",
    "SessionRecord",
    "Store",
    "StoreError",
    "SystemClock",
    "Tariff",
    "default_numbers",
]
