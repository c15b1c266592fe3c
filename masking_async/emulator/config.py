"""What an emulator is started with: frozen ``attrs`` values with defaults that just work.

``EmulatorConfig()`` gives one account (:data:`DEFAULT_AUTH_ID` / :data:`DEFAULT_AUTH_TOKEN`), a
pool of valid virtual numbers in five countries, the real API's rate limit (300 requests per 5 s
per account) and no faults. The parse helpers turn the command line's text (``300/5s``, ``20ms``)
into these values, so the CLI and Python share one meaning for each option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import attrs
import phonenumbers

from masking_async import spec
from masking_async._validators import non_negative, positive
from masking_async.emulator.calls.config import CallsConfig
from masking_async.rates import MAX_LIMIT_REQUESTS, parse_limit

if TYPE_CHECKING:
    from masking_async.emulator.faults import FaultRule

__all__ = [
    "DEFAULT_AUTH_ID",
    "DEFAULT_AUTH_TOKEN",
    "OPERATIONS",
    "RATE_ALGORITHMS",
    "Account",
    "EmulatorConfig",
    "Faults",
    "PoolConfig",
    "ServerRateLimit",
    "default_numbers",
    "parse_account",
    "parse_algorithm",
]

#: The account every emulator has unless told otherwise (``MA`` + 18 characters, as SDKs check).
DEFAULT_AUTH_ID: Final = "MAEMULATORDEFAULT001"
DEFAULT_AUTH_TOKEN: Final = "emulator-token"

#: Operation names, for restricting faults: one per endpoint and method.
OPERATIONS: Final = frozenset({"create", "get", "list", "update", "expire"})

_AUTH_ID = re.compile(r"(MA|SA)[A-Za-z0-9]{18}")


@attrs.frozen
class Account:
    """An account the emulator accepts: HTTP basic auth ``auth_id:auth_token``."""

    auth_id: str = attrs.field()
    auth_token: str = attrs.field(repr=False)

    @auth_id.validator
    def _check_auth_id(self, _: attrs.Attribute[str], value: str) -> None:
        if not _AUTH_ID.fullmatch(value):
            raise ValueError(f"auth id {value!r} must be MA or SA followed by 18 letters/digits")

    @auth_token.validator
    def _check_auth_token(self, _: attrs.Attribute[str], value: str) -> None:
        if not value:
            raise ValueError("auth token must not be empty")


def parse_account(text: str) -> Account:
    """``AUTH_ID:AUTH_TOKEN`` (the ``--account`` flag) as an :class:`Account`."""
    auth_id, sep, token = text.partition(":")
    if not sep:
        raise ValueError(f"account {text!r} must be AUTH_ID:AUTH_TOKEN")
    return Account(auth_id.strip(), token)


#: The rate-limit algorithms (see :mod:`masking_async.emulator.server_limiter`), with aliases.
RATE_ALGORITHMS: Final = ("sliding", "fixed", "token")
_ALGORITHM_ALIASES: Final = {
    "sliding-window": "sliding",
    "fixed-window": "fixed",
    "token-bucket": "token",
}


def parse_algorithm(value: str) -> str:
    """``sliding``, ``fixed`` or ``token`` (or ``...-window``, ``token-bucket``)."""
    name = _ALGORITHM_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in RATE_ALGORITHMS:
        raise ValueError(f"rate algorithm {value!r} must be one of {', '.join(RATE_ALGORITHMS)}")
    return name


@attrs.frozen
class ServerRateLimit:
    """At most ``requests`` per ``per`` seconds and account, counted by ``algorithm``:
    ``sliding`` (any window of ``per`` seconds), ``fixed`` (aligned windows) or ``token`` (a
    bucket of ``requests`` refilled over ``per``)."""

    requests: int = attrs.field(
        default=spec.DOCUMENTED_RATE.requests,
        validator=[positive, attrs.validators.le(MAX_LIMIT_REQUESTS)],
    )
    per: float = attrs.field(default=spec.DOCUMENTED_RATE.per, validator=positive)
    algorithm: str = attrs.field(default="sliding", converter=parse_algorithm)

    @classmethod
    def parse(cls, text: str) -> ServerRateLimit | None:
        """``300/5s``, ``10/s``, ``1200/min`` or ``off`` (``None``: no limit); the grammar is
        :mod:`masking_async.rates`'s, shared by every option that takes a rate."""
        limit = parse_limit(text)
        return None if limit is None else cls(limit.requests, limit.per)

    def __str__(self) -> str:
        text = f"{self.requests}/{self.per:g}s"
        return text if self.algorithm == "sliding" else f"{text} {self.algorithm}"


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, not {value!r}")


def _operations(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    names = frozenset(value)
    unknown = names - OPERATIONS
    if unknown:
        raise ValueError(f"unknown operations {sorted(unknown)}; use {sorted(OPERATIONS)}")
    return names


@attrs.frozen(kw_only=True)
class Faults:
    """Seeded misbehaviour, so a client's retries, timeouts and idempotence can be tested.

    Each request to an API route draws once: with probability ``error_rate`` it gets a 500,
    ``throttle_rate`` a 429, ``drop_rate`` a connection closed without an answer, ``stall_rate``
    an answer ``stall_seconds`` late. With ``phase="after"`` the operation is applied first and
    only its answer is lost, the case a client must survive (a create that happened, unseen).
    ``latency`` plus up to ``jitter`` seconds is added to every answer.
    """

    latency: float = attrs.field(default=0.0, validator=non_negative)
    jitter: float = attrs.field(default=0.0, validator=non_negative)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    throttle_rate: float = attrs.field(default=0.0, validator=_rate)
    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    stall_rate: float = attrs.field(default=0.0, validator=_rate)
    stall_seconds: float = attrs.field(default=30.0, validator=non_negative)
    phase: Literal["before", "after"] = attrs.field(
        default="before", validator=attrs.validators.in_(("before", "after"))
    )
    #: Only these operations misbehave (``create``, ``get``, ``list``, ``update``, ``expire``).
    operations: frozenset[str] | None = attrs.field(default=None, converter=_operations)
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.error_rate + self.throttle_rate + self.drop_rate + self.stall_rate > 1.0:
            raise ValueError("error, throttle, drop and stall rates must add up to at most 1")

    @property
    def active(self) -> bool:
        """Whether any fault or delay is configured at all."""
        rates = self.error_rate + self.throttle_rate + self.drop_rate + self.stall_rate
        return rates > 0 or self.latency > 0 or self.jitter > 0


#: (region, first digits, digits counted after them, first counter): fictional-looking but valid.
_DEFAULT_RANGES: Final = (
    ("US", "+1212555", 4, 100),
    ("CA", "+1416555", 4, 100),
    ("GB", "+442079460", 3, 100),
    ("IN", "+91226994", 4, 100),
    ("AU", "+6125550", 4, 100),
)


def default_numbers(per_country: int = 50) -> tuple[str, ...]:
    """Valid virtual numbers for US, CA, GB, IN and AU, ``per_country`` each, in a stable order.

    One number serves any number of sessions whose parties differ, so fifty per country are far
    more than a demo of thousands of distinct pairs needs; they run out only for a party that is
    in more than fifty active sessions at once.
    """
    numbers: list[str] = []
    for _, prefix, width, first in _DEFAULT_RANGES:
        found = 0
        for counter in range(first, 10**width):
            if found == per_country:
                break
            candidate = f"{prefix}{counter:0{width}d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                numbers.append(candidate)
                found += 1
    return tuple(numbers)


def _numbers(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _reserved(value: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    return {subaccount: tuple(numbers) for subaccount, numbers in value.items()}


@attrs.frozen(kw_only=True)
class PoolConfig:
    """The virtual numbers sessions draw from (E.164, grouped by country on their own).

    ``subaccount_numbers`` reserves numbers to a subaccount: only sessions created with that
    ``subaccount`` get them, and such sessions draw only from them. A subaccount without reserved
    numbers shares the account's pool.
    """

    numbers: tuple[str, ...] = attrs.field(factory=default_numbers, converter=_numbers)
    subaccount_numbers: dict[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_reserved)


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _accounts(value: Iterable[Account]) -> tuple[Account, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything an emulator is started with; ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 0
    accounts: tuple[Account, ...] = attrs.field(
        default=(Account(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN),), converter=_accounts
    )
    pool: PoolConfig = attrs.field(factory=PoolConfig)
    rate_limit: ServerRateLimit | None = attrs.field(factory=ServerRateLimit)
    faults: Faults = attrs.field(factory=Faults)
    #: Fault rules (``masking_async.emulator.FaultRule``) installed after those ``faults`` maps
    #: to; more can be added and removed while the emulator runs.
    fault_rules: tuple[FaultRule, ...] = attrs.field(default=(), converter=tuple)
    #: Seed of session ids, generated PINs and (unless ``faults.seed`` is set) fault draws;
    #: ``None`` draws one from the OS.
    seed: int | None = None
    #: How many requests the request log keeps (the oldest are dropped first).
    request_log_size: int = attrs.field(default=100_000, validator=positive)
    #: Ended sessions created longer ago than this are forgotten (memory stays bounded); the
    #: default is the API's 30-day query horizon.
    retention: float = attrs.field(default=spec.MAX_LIST_WINDOW.total_seconds(), validator=positive)
    #: The bearer token the control plane (``/emulator/...``) requires; ``None``: none needed.
    admin_token: str | None = attrs.field(default=None, repr=False)
    #: Where the state is loaded from on start (if the file exists) and saved to on stop.
    state_file: Path | None = attrs.field(default=None, converter=_optional_path)
    #: Phones, tariff and callback delivery (see ``docs/callbacks.md``).
    calls: CallsConfig = attrs.field(factory=CallsConfig)

    @accounts.validator
    def _check_accounts(
        self, _: attrs.Attribute[tuple[Account, ...]], value: tuple[Account, ...]
    ) -> None:
        if not value:
            raise ValueError("an emulator needs at least one account")
        ids = [account.auth_id for account in value]
        if len(set(ids)) != len(ids):
            raise ValueError("account auth ids must be distinct")
