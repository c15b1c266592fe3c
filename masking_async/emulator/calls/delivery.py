"""Delivering callbacks: signed, in order per session, retried with backoff, all on record.

Each event becomes a :class:`Delivery`. Deliveries of one session go out one after the other
(the next waits until the one before is delivered or given up), so a receiver sees a session's
events in ``SequenceNumber`` order; sessions are delivered concurrently, at most
``DeliveryPolicy.concurrency`` requests at once. Every attempt carries a fresh nonce and both V3
signatures. Workers run in the task group of the emulator's call engine, never on their own.

A delivery's life: ``pending`` -> ``delivered`` (a 2xx) | ``failed`` (attempts used up, or a
final 4xx) | ``refused`` (the target is not loopback and not allowed; nothing was sent) |
``cancelled`` (the emulator stopped first).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
import anyio
import attrs
from anyio.abc import TaskGroup

from masking_async.callbacks import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_MA_HEADER,
    compute_signature,
)
from masking_async.emulator.calls.config import CallsConfig, DeliveryPolicy
from masking_async.retrying import retry_context

__all__ = ["Attempt", "Delivery", "Outbox", "target_allowed"]

DeliveryState = Literal["pending", "delivered", "failed", "refused", "cancelled"]
_RETRYABLE_4XX: Final = frozenset({408, 429})
_KEPT_BODY: Final = 1000


@attrs.define
class Attempt:
    """One request: when it was sent (real monotonic seconds), what came back, how long it took."""

    number: int
    sent: float
    nonce: str
    status: int | None = None
    body: str | None = None
    error: str | None = None
    seconds: float | None = None


@attrs.define
class Delivery:
    """One callback to one URL; ``params`` is exactly what was signed and sent."""

    id: int
    session_uuid: str
    family: Literal["status", "recording"]
    event: str
    sequence: int
    url: str
    method: str
    params: dict[str, str]
    #: When the event happened on the emulator's clock (epoch seconds).
    event_time: float
    #: When it was queued, real monotonic seconds (delivery latency counts from here).
    queued: float
    tokens: tuple[str, str] = attrs.field(repr=False)
    state: DeliveryState = "pending"
    attempts: list[Attempt] = attrs.field(factory=list)
    delivered: float | None = None
    error: str | None = None

    @property
    def latency(self) -> float | None:
        """Seconds from queueing to the 2xx answer, real time."""
        return None if self.delivered is None else self.delivered - self.queued

    def view(self) -> dict[str, Any]:
        """What the control plane shows (never the tokens)."""
        return {
            "id": self.id,
            "session_uuid": self.session_uuid,
            "family": self.family,
            "event": self.event,
            "sequence_number": self.sequence,
            "url": self.url,
            "method": self.method,
            "params": dict(self.params),
            "state": self.state,
            "error": self.error,
            "latency": self.latency,
            "attempts": [attrs.asdict(attempt) for attempt in self.attempts],
        }


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def target_allowed(url: str, config: CallsConfig) -> str | None:
    """Why a callback may not go to ``url`` (``None``: it may)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) URL"
    if config.allow_any_callback_host or _loopback(host) or host in config.callback_hosts:
        return None
    return (
        f"callback target host {host!r} is not loopback; allow it with"
        " CallsConfig(callback_hosts=...) or allow_any_callback_host=True"
    )


class Outbox:
    """The deliveries, their per-session queues and the workers that send them."""

    def __init__(self, config: CallsConfig) -> None:
        self.config = config
        self.policy: DeliveryPolicy = config.delivery
        #: Every delivery, newest last (at most ``CallsConfig.history``).
        self.deliveries: deque[Delivery] = deque(maxlen=config.history)
        self._queues: dict[str, deque[Delivery]] = {}
        self._group: TaskGroup | None = None
        self._http: aiohttp.ClientSession | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._pending = 0
        # asyncio's Event binds no loop when made, so an Emulator can be built outside one
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle (the call engine's task group) -------------------------------------------

    def attach(self, group: TaskGroup, http: aiohttp.ClientSession) -> None:
        """Start sending: workers for queues filled while stopped start now."""
        self._group, self._http = group, http
        self._limiter = anyio.CapacityLimiter(self.policy.concurrency)
        for key in self._queues:
            group.start_soon(self._drain, key)

    def detach(self) -> None:
        self._group = self._http = None
        for queue in self._queues.values():
            for delivery in queue:
                if delivery.state == "pending":
                    delivery.state = "cancelled"
                    self._done()
        self._queues.clear()

    # -- queueing ---------------------------------------------------------------------------

    def add(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        reason = target_allowed(delivery.url, self.config)
        if reason is not None:
            delivery.state, delivery.error = "refused", reason
            return
        self._pending += 1
        self._idle.clear()
        queue = self._queues.get(delivery.session_uuid)
        if queue is None:
            queue = self._queues[delivery.session_uuid] = deque()
            if self._group is not None:
                self._group.start_soon(self._drain, delivery.session_uuid)
        queue.append(delivery)

    async def idle(self) -> None:
        """Return once nothing is pending (delivered, failed, refused or cancelled)."""
        await self._idle.wait()

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    # -- sending ----------------------------------------------------------------------------

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                delivery = queue[0]
                await self._deliver(delivery)
                queue.popleft()
                self._done()
        finally:
            if not queue:
                self._queues.pop(key, None)

    async def _deliver(self, delivery: Delivery) -> None:
        """Attempt until settled or ``attempts`` are spent, waiting ``policy.wait_before``."""
        policy = self.policy
        async for attempt in retry_context(policy.schedule, attempts=policy.attempts):
            assert self._limiter is not None, "deliveries run only while attached"
            async with self._limiter:
                final = await self._attempt(delivery, attempt.number)
            if final:
                return
            if not attempt.retry():
                break
        delivery.state = "failed"
        delivery.error = f"no 2xx answer after {self.policy.attempts} attempts"

    async def _attempt(self, delivery: Delivery, number: int) -> bool:
        """Send once; ``True`` when the delivery is settled (delivered or finally refused)."""
        assert self._http is not None
        nonce = secrets.token_hex(10)
        v3_token, ma_token = delivery.tokens
        params = delivery.params
        headers = {
            SIGNATURE_HEADER: compute_signature(
                delivery.method, delivery.url, params, nonce, v3_token
            ),
            SIGNATURE_MA_HEADER: compute_signature(
                delivery.method, delivery.url, params, nonce, ma_token
            ),
            NONCE_HEADER: nonce,
        }
        attempt = Attempt(number, time.monotonic(), nonce)
        delivery.attempts.append(attempt)
        request: dict[str, Any] = (
            {"params": params} if delivery.method == "GET" else {"data": params}
        )
        try:
            with anyio.fail_after(self.policy.timeout):
                async with self._http.request(
                    delivery.method, delivery.url, headers=headers, **request
                ) as response:
                    attempt.status = response.status
                    attempt.body = (await response.text(errors="replace"))[:_KEPT_BODY]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            attempt.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempt.seconds = time.monotonic() - attempt.sent
        status = attempt.status
        if status is not None and 200 <= status < 300:
            delivery.state, delivery.delivered = "delivered", time.monotonic()
            return True
        if status is not None and status < 500 and status not in _RETRYABLE_4XX:
            delivery.state, delivery.error = "failed", f"answered {status}: not retried"
            return True
        return False


def params_of(fields: Mapping[str, str], sequence: int) -> dict[str, str]:
    """The callback's parameters: the event's attributes and its ``SequenceNumber``."""
    return {**fields, "SequenceNumber": str(sequence)}
