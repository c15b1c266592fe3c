"""How the emulator's phones behave, what calls cost and how callbacks are delivered.

Frozen ``attrs`` values, like the rest of :class:`~masking_async.emulator.EmulatorConfig`:
``EmulatorConfig(calls=CallsConfig(tariff=Tariff(per_minute=Decimal("0.01"))))``.
A :class:`Phone` is the script one leg follows; times are seconds on the emulator's clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from masking_async._validators import non_negative
from masking_async.retrying import Backoff

__all__ = [
    "CallsConfig",
    "DeliveryPolicy",
    "Phone",
    "Tariff",
]


def _digits(value: Iterable[str] | str) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else tuple(value)
    for entry in entries:
        if not entry.isdigit():
            raise ValueError(f"digits: {entry!r} is not a string of DTMF digits 0-9")
    return entries


@attrs.frozen(kw_only=True)
class Phone:
    """The script of one leg.

    ``answer_after``: seconds of ringing before it answers (``None``: it never answers, and
    rings until ``ring_timeout``); ``busy``: it rejects at once. ``hangup_after``: seconds after
    it answered that it hangs up (``None``: it stays on until the other side or
    ``call_time_limit`` ends the call). A caller's leg is answered when its call arrives, so its
    ``hangup_after`` counts from then (a caller who hangs up while the callee rings abandons
    the call). ``digits``: what it keys at each PIN prompt, one entry per attempt, each
    ``dtmf_seconds`` after its prompt; with no entry left it keys nothing.
    """

    answer_after: float | None = attrs.field(default=2.0, validator=non_negative)
    busy: bool = False
    hangup_after: float | None = attrs.field(default=None, validator=non_negative)
    digits: tuple[str, ...] = attrs.field(default=(), converter=_digits)
    dtmf_seconds: float = attrs.field(default=3.0, validator=non_negative)

    @classmethod
    def parse(cls, text: str) -> Phone:
        """``busy``, ``no-answer`` or ``answer=2,hangup=30,digits=1234/0000,dtmf=3``."""
        words = [word.strip() for word in text.split(",") if word.strip()]
        options: dict[str, Any] = {}
        for word in words:
            key, sep, value = word.partition("=")
            key = key.strip().lower()
            if not sep and key in ("busy", "no-answer"):
                name = "busy" if key == "busy" else "answer_after"
                if name in options:
                    raise ValueError(f"phone script {text!r}: {key} is given twice")
                options[name] = True if key == "busy" else None
                continue
            if key not in _PARSE_KEYS or not sep:
                raise ValueError(
                    f"phone script {text!r}: {word!r} is not busy, no-answer, answer=S,"
                    " hangup=S, digits=D[/D...] or dtmf=S"
                )
            name = _PARSE_KEYS[key]
            if name in options:
                raise ValueError(f"phone script {text!r}: {key} is given twice")
            try:
                options[name] = (
                    tuple(value.split("/")) if name == "digits" else float(value.strip())
                )
            except ValueError:
                raise ValueError(
                    f"phone script {text!r}: {key} needs seconds, not {value!r}"
                ) from None
        if options.get("busy") and len(options) > 1:
            raise ValueError(f"phone script {text!r}: busy rejects the call: it takes no other key")
        return cls(**options)


_PARSE_KEYS: Final = {
    "answer": "answer_after",
    "hangup": "hangup_after",
    "digits": "digits",
    "dtmf": "dtmf_seconds",
}


def _money(value: Decimal | str | float) -> Decimal:
    amount = Decimal(str(value))
    if amount < 0:
        raise ValueError(f"a price must be >= 0, not {value!r}")
    return amount


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, not {value!r}")


@attrs.frozen(kw_only=True)
class Tariff:
    """What calls and sessions cost: each answered leg is billed per started ``increment``."""

    per_minute: Decimal = attrs.field(default=Decimal("0.0050"), converter=_money)
    increment: int = attrs.field(default=60, validator=_positive_int)
    session_fee: Decimal = attrs.field(default=Decimal("0"), converter=_money)

    def billed_seconds(self, seconds: float) -> int:
        """Seconds billed for a leg that was up ``seconds`` (0 when it was never answered)."""
        if seconds <= 0:
            return 0
        return math.ceil(round(seconds, 6) / self.increment) * self.increment

    def price(self, billed_seconds: int) -> Decimal:
        return (self.per_minute * billed_seconds / 60).quantize(Decimal("0.00001"))


@attrs.frozen(kw_only=True)
class DeliveryPolicy:
    """How callbacks are delivered: attempts, exponential backoff (real seconds), timeout.

    A delivery succeeds on a 2xx answer. A connection error, a timeout, a 5xx, a 408 or a 429
    is retried after ``backoff * multiplier**n`` seconds (at most ``max_backoff``); any other
    answer is final. ``concurrency`` bounds deliveries in flight.
    """

    attempts: int = attrs.field(default=5, validator=_positive_int)
    backoff: float = attrs.field(default=1.0, validator=non_negative)
    multiplier: float = attrs.field(default=2.0, validator=non_negative)
    max_backoff: float = attrs.field(default=60.0, validator=non_negative)
    timeout: float = attrs.field(default=10.0, validator=non_negative)
    concurrency: int = attrs.field(default=64, validator=_positive_int)

    @property
    def schedule(self) -> Backoff:
        """The retry formula with these numbers, unjittered: a receiver can predict each wait."""
        return Backoff(self.backoff, self.max_backoff, self.multiplier, jitter=False)

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (2, 3, ...)."""
        return self.schedule.ceiling(attempt - 1)


def _hosts(value: Iterable[str]) -> frozenset[str]:
    return frozenset(host.strip().lower() for host in value)


def _phones(value: Mapping[str, Phone]) -> dict[str, Phone]:
    return dict(value)


@attrs.frozen(kw_only=True)
class CallsConfig:
    """Calls and callbacks: the phones' default scripts, the tariff and delivery.

    ``phones`` scripts a number whenever it is dialled (or dials in without a script of its
    own); others follow ``default_phone``. Callback targets must be loopback addresses unless
    their host is in ``callback_hosts`` or ``allow_any_callback_host`` is set (the emulator is
    a test tool: it should not post to the internet by accident). ``subaccount_tokens`` signs
    subaccount sessions' ``X-Plivo-Signature-V3`` with the subaccount's token (the
    ``-Ma-V3`` header always uses the account's). ``tick`` is how often, in real seconds, a
    running emulator looks at its clock while calls are under way (``idle_tick`` otherwise: a
    quiet emulator should not busy its event loop); ``history`` bounds the calls
    and deliveries kept for the control plane.
    """

    default_phone: Phone = attrs.field(factory=Phone)
    phones: dict[str, Phone] = attrs.field(factory=dict, converter=_phones)
    tariff: Tariff = attrs.field(factory=Tariff)
    delivery: DeliveryPolicy = attrs.field(factory=DeliveryPolicy)
    callback_hosts: frozenset[str] = attrs.field(factory=frozenset, converter=_hosts)
    allow_any_callback_host: bool = False
    subaccount_tokens: dict[str, str] = attrs.field(factory=dict, repr=False)
    tick: float = attrs.field(default=0.1, validator=non_negative)
    #: How often it looks while no call is under way (for ``SessionTimeout`` without traffic).
    idle_tick: float = attrs.field(default=1.0, validator=non_negative)
    #: How many calls and deliveries the control plane keeps (the oldest are dropped first).
    history: int = attrs.field(default=100_000, validator=_positive_int)
