"""Calls at a steady rate through an embedded emulator, and how late their callbacks arrive.

Each call is placed on a timetable (``start + i / rate``, never catching up in a burst), answered
at once and hung up after ``talk_seconds``; every session's callbacks go to a verifying receiver
in the same process. A callback's latency is from the moment its event happened on the
emulator's (real) clock to its arrival at the receiver: the engine's tick, the queue, signing,
HTTP and verification together. The report says how many events were expected, how many
arrived, and the latency percentiles.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import anyio
import attrs

from masking_async._validators import positive
from masking_async.callbacks import CallbackEvent, CallbackServer
from masking_async.emulator.calls.config import CallsConfig, DeliveryPolicy, Phone
from masking_async.emulator.clock import SystemClock
from masking_async.emulator.config import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, EmulatorConfig
from masking_async.emulator.server import Emulator
from masking_async.phones import party_pairs

__all__ = ["CallLoad", "CallLoadReport", "run_call_load"]


@attrs.frozen(kw_only=True)
class CallLoad:
    """``rate`` calls per second for ``duration`` seconds, each talking ``talk_seconds``."""

    rate: float = attrs.field(validator=positive)
    duration: float = attrs.field(validator=positive)
    talk_seconds: float = attrs.field(default=1.0, validator=positive)
    method: str = attrs.field(default="POST", validator=attrs.validators.in_(("GET", "POST")))
    record: bool = False
    #: How often the emulator looks at its clock (the floor of callback latency).
    tick: float = attrs.field(default=0.05, validator=positive)
    #: How long to wait for the last callbacks after the last call ended.
    drain: float = attrs.field(default=10.0, validator=positive)

    @property
    def calls(self) -> int:
        return max(1, math.ceil(self.rate * self.duration))


@attrs.frozen(kw_only=True)
class CallLoadReport:
    """What a call load run saw; latencies in milliseconds."""

    calls: int
    events_expected: int
    events_received: int
    deliveries_failed: int
    #: The most a call was placed after its slot on the timetable.
    max_schedule_lag_ms: float
    latency_ms: dict[str, float]

    @property
    def lost(self) -> int:
        return self.events_expected - self.events_received

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "lost": self.lost}


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )
    return {
        "p50": round(cuts[49], 3),
        "p90": round(cuts[89], 3),
        "p99": round(cuts[98], 3),
        "max": round(max(values), 3),
    }


async def run_call_load(load: CallLoad) -> CallLoadReport:
    """Run ``load`` against an emulator and a receiver started here, on 127.0.0.1."""
    arrivals: dict[tuple[str, int], float] = {}

    async def arrived(event: CallbackEvent) -> None:
        arrivals[(event.session_uuid, event.sequence_number)] = time.time()

    calls = CallsConfig(
        tick=load.tick,
        default_phone=Phone(answer_after=0.0, hangup_after=None),
        delivery=DeliveryPolicy(backoff=0.1, max_backoff=1.0),
    )
    config = EmulatorConfig(rate_limit=None, calls=calls)
    async with (
        CallbackServer(auth_token=DEFAULT_AUTH_TOKEN, handler=arrived) as receiver,
        Emulator(config, clock=SystemClock()) as emu,
    ):
        sessions = [
            emu.store.create(
                DEFAULT_AUTH_ID,
                {
                    "first_party": first,
                    "second_party": second,
                    "callback_url": receiver.url,
                    "callback_method": load.method,
                    "record": load.record,
                    "recording_callback_url": receiver.url,
                    "recording_callback_method": load.method,
                },
            )
            for first, second in party_pairs(load.calls)
        ]
        caller = Phone(hangup_after=load.talk_seconds)
        lag = 0.0
        start = time.monotonic()
        for index, record in enumerate(sessions):
            slot = start + index / load.rate
            await anyio.sleep(max(0.0, slot - time.monotonic()))
            lag = max(lag, time.monotonic() - slot)
            emu.calls.call(record.first_party, record.virtual_number, caller_phone=caller)
        await anyio.sleep(load.talk_seconds + 2 * load.tick)
        with anyio.move_on_after(load.drain):
            await emu.calls.settle()
        deliveries = emu.calls.deliveries()
        latencies = [
            (arrivals[(d.session_uuid, d.sequence)] - d.event_time) * 1000
            for d in deliveries
            if (d.session_uuid, d.sequence) in arrivals
        ]
        return CallLoadReport(
            calls=len(sessions),
            events_expected=len(deliveries),
            events_received=len(arrivals),
            deliveries_failed=sum(d.state == "failed" for d in deliveries),
            max_schedule_lag_ms=round(lag * 1000, 3),
            latency_ms=_percentiles(latencies),
        )
