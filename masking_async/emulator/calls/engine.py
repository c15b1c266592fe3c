"""The call engine: places calls, moves them along the emulator's clock, sends their callbacks.

It watches the store (:class:`~masking_async.emulator.store.StoreObserver`): before an account
is read it applies every call step that is due, so ``in-progress``, interactions and totals are
right in any answer; a session created with ``initiate_call_to_first_party`` gets its call; a
session that ends sends ``SessionTimeout``. Steps are applied in clock order across calls, and
expiries due before a step are applied before it, so ``SequenceNumber`` follows time.

While the emulator runs, one supervisor task owns a task group holding the delivery workers and
a ticker that looks at the clock every ``CallsConfig.tick`` seconds while calls are under way
(``idle_tick`` otherwise), so callbacks go out without any request to the API.
``Emulator.start()`` and ``stop()`` may run in different tasks (pytest
fixtures do), which a task group entered in one and left in the other cannot survive; the
supervisor is the one task that enters and leaves it, and ``stop()`` waits for it to end.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import aiohttp
import anyio

from masking_async.callbacks import RECORDING_ATTRIBUTES, STATUS_ATTRIBUTES
from masking_async.emulator.calls.call import Call, Leg, Route, Step, plan_call
from masking_async.emulator.calls.config import CallsConfig, Phone
from masking_async.emulator.calls.delivery import Delivery, Outbox, params_of
from masking_async.emulator.calls.session_calls import (
    SessionCalls,
    bare_number,
    calls_of,
    epoch_text,
)
from masking_async.emulator.clock import Clock
from masking_async.emulator.records import AccountState, SessionRecord
from masking_async.emulator.render import option
from masking_async.emulator.store import Store
from masking_async.rules import normalize_party

__all__ = ["CallEngine"]


def _number(value: Any, field: str) -> str:
    try:
        return normalize_party(value)
    except Exception as exc:  # rules raises its private _Invalid with the rule's words
        raise ValueError(f"{field}: {exc}") from None


def _json(interaction: dict[str, str | None] | None) -> str:
    """The recording callback's ``interaction``: the call's interaction object, as JSON."""
    return json.dumps(interaction) if interaction is not None else ""


def _resource(auth_id: str, leg: Leg) -> str:
    return f"/v1/Account/{auth_id}/Call/{leg.call_uuid}/"


class CallEngine:
    """Calls, phones and callback deliveries of one emulator (``emu.calls``)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: CallsConfig,
        accounts: Iterable[str],
        seed: int | None,
    ) -> None:
        self.store, self.clock, self.config = store, clock, config
        self.accounts = tuple(accounts)
        self.phones: dict[str, Phone] = {
            _number(number, "phones"): phone for number, phone in config.phones.items()
        }
        self.calls: deque[Call] = deque(maxlen=config.history)
        self.outbox = Outbox(config)
        self._by_id: dict[str, Call] = {}
        self._sessions: dict[str, SessionRecord] = {}  # call id -> the session it belongs to
        self._interactions: dict[str, dict[str, str | None]] = {}
        self._heap: list[tuple[float, int, Call, int]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._pumping = False
        #: Set when a call is planned, so an idle ticker looks again at once.
        self._wake = asyncio.Event()
        self._closing: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        store.observer = self

    # -- the Python control plane -----------------------------------------------------------

    def set_phone(self, number: str, phone: Phone) -> None:
        """Script ``number``: how it answers when dialled (and dials, without its own script)."""
        self.phones[_number(number, "number")] = phone

    def phone_of(self, number: str) -> Phone:
        return self.phones.get(number, self.config.default_phone)

    def call(
        self,
        caller: str,
        virtual_number: str,
        *,
        auth_id: str | None = None,
        caller_phone: Phone | None = None,
        callee_phone: Phone | None = None,
        recording_fails: bool = False,
    ) -> Call:
        """``caller`` dials ``virtual_number`` now; the call then runs on the emulator's clock.

        ``caller_phone`` scripts the caller (default: its phone-book script), ``callee_phone``
        whoever is dialled out (default: theirs). ``recording_fails`` makes a recording that
        should start fail (``SessionRecordingFailed``). Raises ``ValueError`` for a malformed
        number and ``SessionNotFound`` for an unknown account.
        """
        caller = _number(caller, "from")
        number = _number(virtual_number, "to")
        auth_id = auth_id or self.accounts[0]
        state = self.store.state(auth_id)
        call = Call("", auth_id, caller, number, self.clock.now(), "dial-in", "")
        route = self._route(state, caller, number)
        self._plan(call, route, caller_phone, callee_phone, recording_fails=recording_fails)
        self.pump()
        return call

    def find(self, call_id: str) -> Call | None:
        return self._by_id.get(call_id)

    def deliveries(self) -> list[Delivery]:
        return list(self.outbox.deliveries)

    async def settle(self) -> None:
        """Apply everything due by the clock now and wait until its callbacks are settled."""
        for auth_id in self.accounts:
            self.store.state(auth_id)
        if self._runner is None and any(d.state == "pending" for d in self.outbox.deliveries):
            raise RuntimeError("callbacks are delivered only while the emulator runs")
        await self.outbox.idle()

    # -- routing and planning ---------------------------------------------------------------

    def _route(self, state: AccountState, caller: str, number: str) -> Route:
        active = state.keyed["active"]
        for role in ("first_party", "second_party"):
            # a party is in at most one active session per number (the store's busy rule)
            for record in active[role].get(caller):
                if record.virtual_number == number:
                    return Route(session=record, role=role)
        # an unknown caller: the active sessions on this number, oldest first
        on_number = list(active["virtual_number"].get(number))
        pins = [r for r in on_number if option(r, "is_pin_authentication_required")]
        if pins:
            return Route(pin_sessions=pins)
        plays = (option(r, "unknown_caller_play") for r in on_number)
        return Route(unknown_play=next((play for play in plays if play), None))

    def _plan(
        self,
        call: Call,
        route: Route,
        caller_phone: Phone | None,
        callee_phone: Phone | None,
        *,
        recording_fails: bool = False,
    ) -> None:
        plan = plan_call(
            call,
            route,
            caller_phone=caller_phone or self.phone_of(call.caller),
            callee_phone=callee_phone,
            option=option,
            tariff=self.config.tariff,
            phone_of=self.phone_of,
            rng=self._rng,
            recording_fails=recording_fails,
        )
        if len(self.calls) == self.calls.maxlen:
            self._by_id.pop(self.calls[0].call_id, None)
        self.calls.append(call)
        self._by_id[call.call_id] = call
        if plan.session is not None:
            self._sessions[call.call_id] = plan.session
        for index, step in enumerate(call.steps):
            heapq.heappush(self._heap, (step.at, next(self._order), call, index))
        self._wake.set()

    # -- the store's observer ---------------------------------------------------------------

    def sync(self, state: AccountState, now: float) -> None:
        self.pump(now)

    def created(self, state: AccountState, record: SessionRecord) -> None:
        if self.config.tariff.session_fee:
            record.calls = SessionCalls(self.config.tariff.session_fee)
        if option(record, "initiate_call_to_first_party"):
            call = Call(
                "",
                state.auth_id,
                record.first_party,
                record.virtual_number,
                record.created,
                "call-me",
                "",
            )
            self._plan(call, Route(session=record, role="first_party"), None, None)

    def ended(self, state: AccountState, record: SessionRecord, at: float) -> None:
        fields = {"EventName": "SessionTimeout", "EventTimestamp": epoch_text(at)}
        self._send(state, record, "status", fields, at)

    def forget(self, auth_id: str | None) -> None:
        """Drop the unfinished calls of an account (all with ``None``) whose sessions the store
        forgets (a reset): their remaining steps are never applied; they end as ``reset``."""
        kept = []
        for entry in self._heap:
            call = entry[2]
            if auth_id is None or call.auth_id == auth_id:
                if call.steps[call.applied :]:
                    del call.steps[call.applied :]
                    call.outcome = "reset"
                self._sessions.pop(call.call_id, None)
                self._interactions.pop(call.call_id, None)
            else:
                kept.append(entry)
        heapq.heapify(kept)
        self._heap = kept

    # -- applying steps ---------------------------------------------------------------------

    def pump(self, now: float | None = None) -> None:
        """Apply every step due by ``now`` (the clock's now by default), in clock order."""
        if self._pumping:
            return
        now = self.clock.now() if now is None else now
        self._pumping = True
        try:
            while self._heap and self._heap[0][0] <= now:
                at, _, call, index = heapq.heappop(self._heap)
                state = self.store.account(call.auth_id)
                if state is not None:
                    self.store.sweep(state, at)  # expiries due first keep their place in order
                self._apply(state, call, call.steps[index])
                call.applied += 1
                if call.done:  # what only a running call needs goes
                    self._sessions.pop(call.call_id, None)
                    self._interactions.pop(call.call_id, None)
        finally:
            self._pumping = False

    def _apply(self, state: AccountState | None, call: Call, step: Step) -> None:
        if step.kind == "leg":
            assert step.leg is not None
            assert step.state is not None
            call.legs[step.leg].move(step.state, step.at, step.cause)
            return
        record = self._sessions.get(call.call_id)
        if record is None or state is None:
            return
        calls = calls_of(record)
        if step.kind == "start":
            calls.up += 1
            calls.count += 1
            leg = call.legs[0]
            if leg.role is not None:
                interaction: dict[str, str | None] = {
                    "first_party_resource_url": None,
                    "second_party_resource_url": None,
                    "recording_resource_url": None,
                }
                interaction[f"{leg.role}_resource_url"] = _resource(call.auth_id, leg)
                calls.interactions.append(interaction)
                self._interactions[call.call_id] = interaction
        elif step.kind == "dial":
            assert step.leg is not None
            calls.count += 1
            leg = call.legs[step.leg]
            if call.call_id in self._interactions:
                self._interactions[call.call_id][f"{leg.role}_resource_url"] = _resource(
                    call.auth_id, leg
                )
        elif step.kind == "record":
            if call.call_id in self._interactions:
                self._interactions[call.call_id]["recording_resource_url"] = step.fields["url"]
        elif step.kind == "end":
            calls.up -= 1
            tariff = self.config.tariff
            for leg in call.legs:
                billed = tariff.billed_seconds(leg.seconds)
                calls.billed += billed
                calls.amount += tariff.price(billed)
            calls.last = step.at
        elif step.kind == "event":
            fields = dict(step.fields)
            if step.family == "recording":
                fields["interaction"] = _json(self._interactions.get(call.call_id))
            self._send(state, record, step.family, fields, step.at)

    def _send(
        self,
        state: AccountState,
        record: SessionRecord,
        family: str,
        fields: dict[str, str],
        at: float,
    ) -> None:
        prefix = "recording_" if family == "recording" else ""
        url = option(record, f"{prefix}callback_url")
        if not url:
            return
        calls = calls_of(record)
        calls.sequence += 1
        names = RECORDING_ATTRIBUTES if family == "recording" else STATUS_ATTRIBUTES
        full = {
            **{name: "" for name in names},
            **fields,
            "SessionUUID": record.uuid,
            "VirtualNumber": bare_number(record.virtual_number),
        }
        main = state.auth_token
        own = self.config.subaccount_tokens.get(record.subaccount or "", main)
        self.outbox.add(
            Delivery(
                id=next(self._ids),
                session_uuid=record.uuid,
                family="recording" if family == "recording" else "status",
                event=fields["EventName"],
                sequence=calls.sequence,
                url=url,
                method=str(option(record, f"{prefix}callback_method") or "POST").upper(),
                params=params_of(full, calls.sequence),
                event_time=at,
                queued=time.monotonic(),
                tokens=(own, main),
            )
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = asyncio.Event()
        started = asyncio.Event()
        self._runner = asyncio.create_task(self._supervise(started, self._closing))
        await started.wait()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None and self._closing is not None:
            self._closing.set()
            await runner

    async def _supervise(self, started: asyncio.Event, closing: asyncio.Event) -> None:
        try:
            async with aiohttp.ClientSession() as http, anyio.create_task_group() as group:
                self.outbox.attach(group, http)
                group.start_soon(self._tick)
                started.set()
                await closing.wait()
                group.cancel_scope.cancel()
        finally:
            self.outbox.detach()

    async def _tick(self) -> None:
        """Look at the clock: every ``tick`` while calls are under way, else every ``idle_tick``
        or as soon as a call is placed."""
        while True:
            for auth_id in self.accounts:
                self.store.state(auth_id)
            self._wake.clear()
            with anyio.move_on_after(self.config.tick if self._heap else self.config.idle_tick):
                await self._wake.wait()
