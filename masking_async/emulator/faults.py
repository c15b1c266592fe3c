"""Fault rules: which request misbehaves, how, and whether before or after its change is applied.

A :class:`FaultRule` names an operation (or every one), a kind, a phase, a probability and an
optional count. :class:`FaultInjector` holds the rules in the order they were added and draws
exactly one number in ``[0, 1)`` per API request from its own ``random.Random(seed)``: the
rules that match the request's operation (and have not used up their count) take consecutive
slices of that interval, each as wide as its probability, so one request meets at most one rule
and a seed repeats the same schedule for the same sequence of requests.

What each kind does, as a real server would:

=========  =====================================================================================
kind       before the change                        after the change (it is applied)
=========  =====================================================================================
error      answers ``status``, nothing applied       answers ``status``; the change stays
           (with ``Retry-After`` when the rule names one: a 503 that says when to come back)
throttle   429 with ``Retry-After``, nothing applied (never after: a 429 always means "not done")
drop       closes the connection, nothing applied   closes the connection without an answer
stall      holds the request ``stall_seconds``,     holds the answer ``stall_seconds``
           then applies it even if the client left
=========  =====================================================================================

The legacy :class:`~masking_async.emulator.config.Faults` rates are mapped onto rules by
:func:`rules_from_faults`, so both configs mean the same thing.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from typing import Any, Final, Literal

import attrs

from masking_async.durations import parse_seconds
from masking_async.emulator.config import OPERATIONS, Faults

__all__ = [
    "FAULT_KINDS",
    "ActiveRule",
    "FaultInjector",
    "FaultKind",
    "FaultPhase",
    "FaultRule",
    "rules_from_faults",
]

FaultKind = Literal["error", "throttle", "drop", "stall"]
FaultPhase = Literal["before", "after"]
RetryAfterForm = Literal["seconds", "date"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("error", "throttle", "drop", "stall")
_PHASES: Final = ("before", "after")
_RETRY_AFTER_FORMS: Final = ("seconds", "date")
#: A throttle's Retry-After when its rule names none.
_THROTTLE_RETRY_AFTER: Final = 1


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault rule {attribute.name} must be between 0 and 1, not {value!r}")


def _operation(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and value not in OPERATIONS:
        raise ValueError(f"fault rule operation {value!r} is not one of {sorted(OPERATIONS)}")


def _one_of(choices: tuple[str, ...]) -> Any:
    """An attrs validator whose error is a plain sentence (``in_``'s carries attrs internals)."""

    def check(_: object, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in choices:
            raise ValueError(
                f"fault {attribute.name} {value!r} must be one of {', '.join(choices)}"
            )

    return check


def _seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value < float("inf"):
        raise ValueError(f"fault rule {attribute.name} must be >= 0 seconds, not {value!r}")


@attrs.frozen(kw_only=True)
class FaultRule:
    """One way requests misbehave; see the module docstring for what each kind does.

    ``operation`` is ``create``, ``get``, ``list``, ``update`` or ``expire`` (``None``: all).
    ``count`` caps how many requests the rule hits (``None``: no cap). ``status`` is the answer
    of an ``error`` (400-599, not 429: a 429 is a ``throttle``, which is never applied).
    ``retry_after``: whole seconds for the answer's ``Retry-After`` (a throttle's default is 1;
    an error carries one only when given); ``retry_after_as="date"`` sends it as the HTTP date
    that many seconds from now (the real clock's, as a client reads it) instead of seconds.
    """

    kind: FaultKind = attrs.field(validator=_one_of(FAULT_KINDS))
    operation: str | None = attrs.field(default=None, validator=_operation)
    phase: FaultPhase = attrs.field(default="before", validator=_one_of(_PHASES))
    probability: float = attrs.field(default=1.0, validator=_probability)
    count: int | None = attrs.field(default=None)
    status: int = 500
    retry_after: int | None = attrs.field(default=None)
    retry_after_as: RetryAfterForm = attrs.field(
        default="seconds", validator=_one_of(_RETRY_AFTER_FORMS)
    )
    stall_seconds: float = attrs.field(default=30.0, validator=_seconds)

    @count.validator
    def _check_count(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or value < 1):
            raise ValueError(f"fault rule count must be a whole number >= 1, not {value!r}")

    @retry_after.validator
    def _check_retry_after(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or value < 0):
            raise ValueError(f"fault rule retry_after must be whole seconds >= 0, not {value!r}")

    def __attrs_post_init__(self) -> None:
        if self.kind == "error" and not (400 <= self.status <= 599 and self.status != 429):
            raise ValueError(
                f"fault rule status must be 400-599 and not 429 (use kind throttle), "
                f"not {self.status!r}"
            )
        if self.kind == "throttle" and self.phase == "after":
            raise ValueError("a throttle (429) is never applied: its phase must be 'before'")

    def matches(self, operation: str) -> bool:
        return self.operation is None or self.operation == operation

    def retry_after_header(self, now: float) -> dict[str, str]:
        """The answer's ``Retry-After`` header (empty when it carries none); ``now``: epoch s."""
        seconds = self.retry_after
        if seconds is None and self.kind == "throttle":
            seconds = _THROTTLE_RETRY_AFTER
        if seconds is None:
            return {}
        if self.retry_after_as == "date":  # whole seconds: never earlier than asked
            return {"Retry-After": formatdate(math.ceil(now) + seconds, usegmt=True)}
        return {"Retry-After": str(seconds)}

    def to_json(self) -> dict[str, Any]:
        """The rule as plain JSON values (the control plane's wire form)."""
        return attrs.asdict(self)

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """The CLI's ``--fault`` form: ``kind=error,operation=update,status=503,phase=after``."""
        fields: dict[str, Any] = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                raise ValueError(f"fault {text!r} must be key=value pairs such as kind=error")
            if key in fields:
                raise ValueError(f"fault {text!r}: {key} is given twice")
            if key == "stall_seconds":
                fields[key] = parse_seconds(value)
            elif key == "probability":
                try:
                    fields[key] = float(value)
                except ValueError:
                    raise ValueError(f"fault probability must be 0-1, not {value!r}") from None
            elif key in ("count", "status", "retry_after"):
                if not value.isdigit():
                    raise ValueError(f"fault field {key} must be a whole number, not {value!r}")
                fields[key] = int(value)
            else:
                fields[key] = value
        return cls.from_json(fields)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from JSON; unknown keys and wrong types are a ``ValueError`` naming them."""
        if not isinstance(data, Mapping):
            raise ValueError("a fault rule must be a JSON object")
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault rule fields {unknown}; use {sorted(known)}")
        types: dict[str, tuple[type, ...]] = {
            "kind": (str,),
            "operation": (str, type(None)),
            "phase": (str,),
            "probability": (int, float),
            "count": (int, type(None)),
            "status": (int,),
            "retry_after": (int, type(None)),
            "retry_after_as": (str,),
            "stall_seconds": (int, float),
        }
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, types[name]):
                raise ValueError(f"fault rule field {name!r} has the wrong type: {value!r}")
        if "kind" not in data:
            raise ValueError("a fault rule needs a kind: error, throttle, drop or stall")
        return cls(**data)


@attrs.define
class ActiveRule:
    """A rule installed in an emulator: its id (for removal) and how many requests it hit."""

    id: int
    rule: FaultRule
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.rule.count is not None and self.hits >= self.rule.count

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "hits": self.hits, **self.rule.to_json()}


def rules_from_faults(faults: Faults) -> list[FaultRule]:
    """The legacy rates as rules: one per kind and operation, in error-throttle-drop-stall order.

    A request of one operation then meets the same slices of ``[0, 1)`` as before; the only
    change is the one the issue asks for: a throttle is always answered before the change.
    """
    operations: Iterable[str | None] = (
        sorted(faults.operations) if faults.operations is not None else (None,)
    )
    rates: tuple[tuple[FaultKind, float], ...] = (
        ("error", faults.error_rate),
        ("throttle", faults.throttle_rate),
        ("drop", faults.drop_rate),
        ("stall", faults.stall_rate),
    )
    return [
        FaultRule(
            kind=kind,
            operation=operation,
            phase="before" if kind == "throttle" else faults.phase,
            probability=rate,
            stall_seconds=faults.stall_seconds,
        )
        for kind, rate in rates
        if rate > 0
        for operation in operations
    ]


class FaultInjector:
    """The emulator's live fault rules and their seeded draws (never the global ``random``)."""

    def __init__(
        self, faults: Faults, rules: Iterable[FaultRule] = (), *, seed: int | None = None
    ) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed if faults.seed is not None else seed)
        self._ids = itertools.count(1)
        self._rules: list[ActiveRule] = []
        for rule in (*rules_from_faults(faults), *rules):
            self.add(rule)

    def add(self, rule: FaultRule) -> ActiveRule:
        """Install a rule after the others; returns it with its id."""
        if not isinstance(rule, FaultRule):
            raise TypeError(f"expected a FaultRule, not {type(rule).__name__}")
        active = ActiveRule(next(self._ids), rule)
        self._rules.append(active)
        return active

    def rules(self) -> list[ActiveRule]:
        """The installed rules, in draw order (copies of the list, live hit counts)."""
        return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        """Remove one rule by id; ``False`` when there is none with that id."""
        kept = [active for active in self._rules if active.id != rule_id]
        removed = len(kept) != len(self._rules)
        self._rules = kept
        return removed

    def clear(self) -> None:
        self._rules = []

    def draw(self, operation: str) -> FaultRule | None:
        """One draw for one request of ``operation``: the rule it meets, or ``None``."""
        point = self._random.random()
        for active in self._rules:
            if active.exhausted or not active.rule.matches(operation):
                continue
            if point < active.rule.probability:
                active.hits += 1
                return active.rule
            point -= active.rule.probability
        return None

    def delay(self) -> float:
        """Seconds to hold every answer: the fixed latency plus a uniform share of the jitter."""
        jitter = self._random.uniform(0, self.faults.jitter) if self.faults.jitter else 0.0
        return self.faults.latency + jitter
