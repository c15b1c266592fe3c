"""Calls through the emulator: routing by caller + virtual number, PIN prompts, legs and events.

A call is planned whole when it starts: the phones' scripts (:class:`Phone`) and the session's
settings decide every moment of it, so the plan is a list of timed :class:`Step` s that the call
engine applies as the emulator's clock passes them (a test advances a ManualClock; nothing
sleeps). Routing is decided when the call arrives; a session that expires during a call does
not cut it (the spec: calls *made* after expiry are not forwarded).

How a call is routed (``session-api-reference.md``, "Create a Session"):

- the caller is a party of an active session on the virtual number: it is answered and the
  other party is dialled with the virtual number as caller ID (with PIN authentication on, it
  is an ``AuthorizedCaller``, or must key its own PIN under ``force_pin_authentication``);
- otherwise, when an active session on the number requires a PIN: the caller hears
  ``pin_prompt_play`` and keys a PIN; a party's PIN connects it as that party, a wrong one plays
  ``incorrect_pin_play`` and, after ``pin_retry_wait`` s, prompts again, ``pin_retry`` times;
- otherwise the caller hears ``unknown_caller_play`` (if a session on the number has one) and
  the call ends, touching no session. An expired session routes nowhere.
- ``initiate_call_to_first_party``: at creation the first party is rung, then bridged.

Callback events name legs, not roles: the *first party* is the leg that reached the virtual
number (or that Plivo rang first), the *second party* the one dialled out. Interactions name
roles: ``first_party_resource_url`` is the session's first party's leg.

A leg's life, checked on every move (:data:`LEG_TRANSITIONS`)::

    from \\ to   ringing  answered  busy  no-answer  cancelled  completed
    created      yes      yes (an inbound leg is answered at once)
    ringing               yes       yes   yes        yes
    answered                                                     yes

``ring_timeout`` ends ringing (``no-answer``), ``call_time_limit`` ends each leg that long after
it was answered. Recording starts when both legs are answered and ``record`` is on.
"""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Literal

import attrs

from masking_async.emulator.calls.config import Phone, Tariff
from masking_async.emulator.calls.session_calls import bare_number, epoch_text
from masking_async.emulator.records import SessionRecord

__all__ = [
    "CAUSES",
    "LEG_TRANSITIONS",
    "Call",
    "Leg",
    "LegState",
    "Plan",
    "Route",
    "Step",
    "plan_call",
]


class LegState(str, enum.Enum):
    CREATED = "created"
    RINGING = "ringing"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


LEG_TRANSITIONS: Final[Mapping[LegState, frozenset[LegState]]] = {
    LegState.CREATED: frozenset({LegState.RINGING, LegState.ANSWERED}),
    LegState.RINGING: frozenset(
        {LegState.ANSWERED, LegState.BUSY, LegState.NO_ANSWER, LegState.CANCELLED}
    ),
    LegState.ANSWERED: frozenset({LegState.COMPLETED}),
    LegState.BUSY: frozenset(),
    LegState.NO_ANSWER: frozenset(),
    LegState.CANCELLED: frozenset(),
    LegState.COMPLETED: frozenset(),
}

#: Hangup causes (``PlivoHangupCause``, ``PlivoHangupCauseCode``) the emulator reports. The codes
#: follow the families of Plivo's hangup-cause table (1000 cancelled, 3000 no connection,
#: 4000 normal); the reference does not say which a masking session sends.
CAUSES: Final[Mapping[str, tuple[str, int]]] = {
    "normal": ("Normal Hangup", 4000),
    "busy": ("Busy Line", 3000),
    "no-answer": ("No Answer", 3020),
    "cancelled": ("Canceled", 1000),
    "time-limit": ("Max Call Duration Reached", 4040),
}

Family = Literal["status", "recording"]
#: How a leg that never answered ends, by cause (any other cause cancels it).
_UNANSWERED_END: Final = {"busy": LegState.BUSY, "no-answer": LegState.NO_ANSWER}


class TransitionError(RuntimeError):
    """A leg was moved along an edge the leg state machine does not have (a planner bug)."""


@attrs.define
class Leg:
    """One call leg: a party's real number, its role in the session, and its times."""

    call_uuid: str
    number: str
    role: str | None
    #: The number this leg's phone shows: the virtual number on every leg Plivo dials out.
    caller_id: str | None = None
    state: LegState = LegState.CREATED
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    cause: str | None = None

    def move(self, state: LegState, at: float, cause: str | None = None) -> None:
        if state not in LEG_TRANSITIONS[self.state]:
            raise TransitionError(f"leg {self.call_uuid}: {self.state.value} -> {state.value}")
        self.state = state
        if state is LegState.RINGING:
            self.ringing_at = at
        elif state is LegState.ANSWERED:
            self.answered_at = at
        else:
            self.ended_at, self.cause = at, cause

    @property
    def seconds(self) -> float:
        """How long it was answered (0 if never)."""
        if self.answered_at is None or self.ended_at is None:
            return 0.0
        return self.ended_at - self.answered_at


StepKind = Literal["start", "dial", "record", "leg", "event", "end"]


@attrs.frozen
class Step:
    """One moment of a call: a leg moves, the session changes, or a callback event is due."""

    at: float
    kind: StepKind
    leg: int | None = None
    state: LegState | None = None
    cause: str | None = None
    family: Family = "status"
    fields: Mapping[str, str] = attrs.field(factory=dict)


@attrs.define
class Call:
    """A call as the control plane shows it; ``steps`` is its plan, ``applied`` how far it got."""

    call_id: str
    auth_id: str
    caller: str
    virtual_number: str
    placed_at: float
    kind: Literal["dial-in", "call-me"]
    outcome: str
    session_uuid: str | None = None
    legs: list[Leg] = attrs.field(factory=list)
    #: What was played, to whom: ``{"to": number, "url": url}`` in order.
    played: list[dict[str, str]] = attrs.field(factory=list)
    pin_attempts: list[str | None] = attrs.field(factory=list)
    recording: dict[str, str] | None = None
    steps: list[Step] = attrs.field(factory=list)
    applied: int = 0
    ended_at: float | None = None

    @property
    def done(self) -> bool:
        return self.applied >= len(self.steps)


@attrs.frozen
class Route:
    """What the call reaches: the caller's own session, or the PIN sessions on the number."""

    session: SessionRecord | None = None
    role: str | None = None
    pin_sessions: Sequence[SessionRecord] = ()
    unknown_play: str | None = None


@attrs.frozen
class Plan:
    call: Call
    session: SessionRecord | None


def _int(seconds: float) -> str:
    return str(round(seconds))


class _Planner:
    """Builds one call's steps; ``option`` reads a session setting or its documented default."""

    def __init__(
        self,
        call: Call,
        *,
        option: Callable[[SessionRecord, str], Any],
        tariff: Tariff,
        phone_of: Callable[[str], Phone],
        new_uuid: Callable[[], str],
        recording_fails: bool,
        caller_phone: Phone,
    ) -> None:
        self.call = call
        self.caller_phone = caller_phone
        #: When the caller hangs up by its script (absolute time), if it does.
        self.gives_up: float | None = None
        self.abandoned = False
        self.option = option
        self.tariff = tariff
        self.phone_of = phone_of
        self.new_uuid = new_uuid
        self.recording_fails = recording_fails
        self.session: SessionRecord | None = None
        self.legs: list[Leg] = []  # a shadow copy, moved while planning to check the plan

    # -- building blocks -------------------------------------------------------------------

    def step(self, step: Step) -> None:
        self.call.steps.append(step)

    def new_leg(self, number: str, role: str | None, caller_id: str | None) -> int:
        uuid_ = self.new_uuid()
        self.call.legs.append(Leg(uuid_, number, role, caller_id))
        self.legs.append(Leg(uuid_, number, role, caller_id))
        return len(self.legs) - 1

    def move(self, leg: int, state: LegState, at: float, cause: str | None = None) -> None:
        self.legs[leg].move(state, at, cause)
        self.step(Step(at, "leg", leg=leg, state=state, cause=cause))

    def play(self, leg: int, url: str | None) -> None:
        """Play ``url`` (if set) to a leg; plays take no time on the emulator's clock."""
        if url:
            self.call.played.append({"to": self.legs[leg].number, "url": url})

    def event(self, at: float, name: str, **fields: str) -> None:
        """A status callback event (``callback_url``)."""
        self._event(at, name, "status", fields)

    def recording_event(self, at: float, name: str, **fields: str) -> None:
        """A recording callback event (``recording_callback_url``)."""
        self._event(at, name, "recording", fields)

    def _event(self, at: float, name: str, family: Family, fields: Mapping[str, str]) -> None:
        base = {"EventName": name, "EventTimestamp": epoch_text(at)}
        self.step(Step(at, "event", family=family, fields={**base, **fields}))

    def parties(self) -> dict[str, str]:
        first = self.legs[0].number
        second = self.legs[1].number if len(self.legs) > 1 else ""
        return {"From": bare_number(first), "To": bare_number(second)}

    def hangup(self, at: float, leg: int, cause: str) -> None:
        """End a leg (completed if it was answered) and send its hangup event."""
        was = self.legs[leg]
        if was.state is LegState.ANSWERED:
            state = LegState.COMPLETED
        else:
            state = _UNANSWERED_END.get(cause, LegState.CANCELLED)
        self.move(leg, state, at, cause)
        billed = self.tariff.billed_seconds(was.seconds)
        name, code = CAUSES[cause]
        self.event(
            at,
            "SessionFirstPartyHangup" if leg == 0 else "SessionSecondPartyHangup",
            **self.parties(),
            Duration=_int(was.seconds),
            BilledDuration=str(billed),
            Amount=str(self.tariff.price(billed)),
            PlivoHangupCause=name,
            PlivoHangupCauseCode=str(code),
        )

    def finish(self, at: float, outcome: str) -> None:
        """Every leg is down: the parties-hangup event, then the session's totals."""
        billed = [self.tariff.billed_seconds(leg.seconds) for leg in self.legs]
        self.event(
            at,
            "SessionPartiesHangup",
            **self.parties(),
            Duration=_int(max(leg.seconds for leg in self.legs)),
            BilledDuration=str(sum(billed)),
            Amount=str(sum((self.tariff.price(b) for b in billed), Decimal("0"))),
        )
        self.step(Step(at, "end"))
        self.call.outcome = outcome
        self.call.ended_at = at

    # -- the call ---------------------------------------------------------------------------

    def pin_status(self, at: float, status: str, counter: int) -> None:
        self.event(
            at,
            "SessionPinAuthenticationStatus",
            **self.parties(),
            PinAuthenticationStatus=status,
            PinRetryCounter=str(counter),
        )

    def authenticate(
        self, t: float, candidates: Sequence[SessionRecord], own_role: str | None
    ) -> tuple[float, SessionRecord | None, str | None]:
        """The PIN prompts: when they ended, and the session and role the PIN keyed, if any.

        ``own_role``: the known caller forced to key its own PIN; otherwise any candidate's
        first or second party PIN is accepted. The first candidate's PIN settings apply.
        """
        caller, settings = self.caller_phone, candidates[0]
        attempts = 1 + int(self.option(settings, "pin_retry"))
        roles = [own_role] if own_role else ["first_party", "second_party"]
        for attempt in range(attempts):
            self.play(0, self.option(settings, "pin_prompt_play"))
            keyed_at = t + caller.dtmf_seconds
            if self.gives_up is not None and self.gives_up <= keyed_at:
                self.abandoned = True
                return self.gives_up, None, None
            entry = caller.digits[attempt] if attempt < len(caller.digits) else None
            self.call.pin_attempts.append(entry)
            for record in candidates:
                for role in roles:
                    if entry is not None and entry == self.option(record, f"{role}_pin"):
                        self.session = record
                        self.pin_status(keyed_at, "success", attempt)
                        return keyed_at, record, role
            self.pin_status(keyed_at, "failed", attempt + 1)
            self.play(0, self.option(settings, "incorrect_pin_play"))
            t = keyed_at
            if attempt + 1 < attempts:
                t += float(self.option(settings, "pin_retry_wait"))
        return t, None, None

    def bridge(self, t: float, record: SessionRecord, role: str, callee: Phone | None) -> None:
        """The caller (leg 0, answered) is through: ring the other party and connect them."""
        other_role = "second_party" if role == "first_party" else "first_party"
        other = getattr(record, other_role)
        limit = float(self.option(record, "call_time_limit"))
        self.play(0, self.option(record, f"{role}_play_url"))
        if other is None:  # a single-party session: nobody to dial
            self.hangup(t, 0, "normal")
            self.finish(t, "no-second-party")
            return
        a_limit = (self.legs[0].answered_at or t) + limit
        a_stop, a_cause = a_limit, "time-limit"
        if self.gives_up is not None and self.gives_up <= a_limit:
            a_stop, a_cause = self.gives_up, "normal"
        phone = callee or self.phone_of(other)
        leg = self.new_leg(other, other_role, self.call.virtual_number)
        self.step(Step(t, "dial", leg=leg))
        self.move(leg, LegState.RINGING, t)
        self.event(t, "SessionSecondPartyRing", **self.parties())
        if phone.busy:
            self.hangup(t, leg, "busy")
            self.hangup(t, 0, "normal")
            self.finish(t, "busy")
            return
        ring_end = t + float(self.option(record, "ring_timeout"))
        answer = None if phone.answer_after is None else t + phone.answer_after
        if answer is not None and answer >= ring_end:
            answer = None
        if a_stop <= (ring_end if answer is None else answer):
            self.hangup(a_stop, 0, a_cause)
            self.hangup(a_stop, leg, "cancelled")
            self.finish(a_stop, "abandoned")
            return
        if answer is None:
            self.hangup(ring_end, leg, "no-answer")
            self.hangup(ring_end, 0, "normal")
            self.finish(ring_end, "no-answer")
            return
        self.move(leg, LegState.ANSWERED, answer)
        self.event(answer, "SessionSecondPartyAnswer", **self.parties())
        self.play(leg, self.option(record, f"{other_role}_play_url"))
        recording = self.start_recording(answer, record)
        b_limit = answer + limit
        ends = [(a_stop, 0, a_cause), (b_limit, leg, "time-limit")]
        if phone.hangup_after is not None:
            ends.append((answer + phone.hangup_after, leg, "normal"))
        end, first, cause = min(ends, key=lambda item: item[0])  # ties: the caller first
        second = leg if first == 0 else 0
        second_cause = "time-limit" if cause == "time-limit" and b_limit == a_limit else "normal"
        self.hangup(end, first, cause)
        if recording is not None:
            self.stop_recording(end, recording)
        self.hangup(end, second, second_cause)
        self.finish(end, "completed")

    def start_recording(self, at: float, record: SessionRecord) -> dict[str, str] | None:
        if not self.option(record, "record"):
            return None
        if self.recording_fails:
            self.recording_event(at, "SessionRecordingFailed", **self.parties())
            return None
        recording_id = self.new_uuid()
        fmt = self.option(record, "record_file_format")
        base = f"/v1/Account/{self.call.auth_id}/Recording/{recording_id}"
        recording = {
            "RecordingUUID": recording_id,
            "RecordingURL": f"{base}.{fmt}",
            "RecordingResourceURL": base + "/",
            "RecordingStartTime": epoch_text(at),
            "RecordingFormat": f".{fmt}",
        }
        self.call.recording = dict(recording)
        self.step(Step(at, "record", fields={"url": recording["RecordingResourceURL"]}))
        self.recording_event(
            at,
            "SessionRecordingInitiated",
            **self.parties(),
            **recording,
            RecordingEndTime="",
            RecordingDuration="",
        )
        return recording

    def stop_recording(self, at: float, recording: dict[str, str]) -> None:
        started = self.legs[1].answered_at or at
        done = {
            **recording,
            "RecordingEndTime": epoch_text(at),
            "RecordingDuration": _int(at - started),
        }
        if self.call.recording is not None:
            self.call.recording.update(done)
        self.recording_event(at, "SessionRecordingCompleted", **self.parties(), **done)


def plan_call(
    call: Call,
    route: Route,
    *,
    caller_phone: Phone,
    callee_phone: Phone | None,
    option: Callable[[SessionRecord, str], Any],
    tariff: Tariff,
    phone_of: Callable[[str], Phone],
    rng: random.Random,
    recording_fails: bool = False,
) -> Plan:
    """Plan a whole call from its route and scripts; ``call.steps`` is filled in clock order."""

    def new_uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    planner = _Planner(
        call,
        option=option,
        tariff=tariff,
        phone_of=phone_of,
        new_uuid=new_uuid,
        recording_fails=recording_fails,
        caller_phone=caller_phone,
    )
    t0 = call.placed_at
    if call.kind == "call-me":
        _plan_call_me(planner, route, t0, callee_phone)
    else:
        _plan_dial_in(planner, route, t0, callee_phone)
    call.call_id = call.legs[0].call_uuid
    session = planner.session
    call.session_uuid = session.uuid if session is not None else None
    call.steps.sort(key=lambda step: step.at)  # stable: same-moment steps keep their order
    return Plan(call, session)


def _plan_dial_in(planner: _Planner, route: Route, t0: float, callee: Phone | None) -> None:
    call, phone = planner.call, planner.caller_phone
    planner.gives_up = None if phone.hangup_after is None else t0 + phone.hangup_after
    role = route.role
    leg = planner.new_leg(call.caller, role, call.caller)
    candidates = [route.session] if route.session is not None else list(route.pin_sessions)
    if not candidates:  # nobody to reach: the unknown-caller message, then the line drops
        planner.move(leg, LegState.ANSWERED, t0)
        planner.play(leg, route.unknown_play)
        planner.move(leg, LegState.COMPLETED, t0, "normal")
        call.outcome, call.ended_at = "unknown-caller", t0
        return
    planner.session = candidates[0]
    planner.step(Step(t0, "start"))
    planner.move(leg, LegState.ANSWERED, t0)
    planner.event(t0, "SessionFirstPartyAnswer", **planner.parties())
    record = route.session
    t = t0
    if record is not None and role is not None:
        pin = planner.option(record, "is_pin_authentication_required")
        if pin and planner.option(record, "force_pin_authentication"):
            t, found, _ = planner.authenticate(t0, [record], role)
            if found is None:
                _give_up(planner, t)
                return
        elif pin:
            planner.pin_status(t0, "AuthorizedCaller", 0)
    else:
        t, found, role = planner.authenticate(t0, candidates, None)
        if found is None or role is None:
            _give_up(planner, t)
            return
        record = found
        planner.legs[0].role = call.legs[0].role = role
    planner.bridge(t, record, role, callee)


def _give_up(planner: _Planner, t: float) -> None:
    """The PIN was never keyed right (or the caller hung up first): the caller's leg ends."""
    planner.hangup(t, 0, "normal")
    planner.finish(t, "abandoned" if planner.abandoned else "pin-failed")


def _plan_call_me(planner: _Planner, route: Route, t0: float, callee: Phone | None) -> None:
    record = route.session
    assert record is not None, "a call-me call belongs to the session that asked for it"
    planner.session = record
    phone = planner.caller_phone
    leg = planner.new_leg(record.first_party, "first_party", record.virtual_number)
    planner.step(Step(t0, "start"))
    planner.move(leg, LegState.RINGING, t0)
    ring_end = t0 + float(planner.option(record, "ring_timeout"))
    answer = None if phone.answer_after is None else t0 + phone.answer_after
    if phone.busy:
        planner.hangup(t0, leg, "busy")
        planner.finish(t0, "busy")
        return
    if answer is None or answer >= ring_end:
        planner.hangup(ring_end, leg, "no-answer")
        planner.finish(ring_end, "no-answer")
        return
    planner.move(leg, LegState.ANSWERED, answer)
    planner.event(answer, "SessionFirstPartyAnswer", **planner.parties())
    if phone.hangup_after is not None:
        planner.gives_up = answer + phone.hangup_after
    planner.bridge(answer, record, "first_party", callee)
