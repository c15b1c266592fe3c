"""How long a call spent on the wire, measured at the client's transport seam.

The client sends through one :class:`~masking_async.client.Transport`; wrapping it is enough to
learn when bytes left and the answer came back, without reaching into the client's rate limiter
(whose interface is its own business). Whatever the call spent outside the transport was spent
in the client, mostly queued behind its limiter. Each request runs in its own task, so a
context variable ties the transport's measurement to the request that made it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import attrs

from masking_async.client import Response, Transport

__all__ = ["CallTiming", "TimedTransport", "timing"]


@attrs.define
class CallTiming:
    """Seconds one call spent on the wire, over every request it sent (adoption look-ups too)."""

    wire: float = 0.0
    sent: bool = False


_CURRENT: ContextVar[CallTiming | None] = ContextVar("masking_async_load_call", default=None)


@contextlib.contextmanager
def timing(into: CallTiming) -> Iterator[CallTiming]:
    """Charge the wire time of calls made inside this block (in this task) to ``into``."""
    token = _CURRENT.set(into)
    try:
        yield into
    finally:
        _CURRENT.reset(token)


class TimedTransport:
    """A :class:`Transport` that adds each send's duration to the current :class:`CallTiming`."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        current = _CURRENT.get()
        if current is not None:
            current.sent = True
        started = time.perf_counter()
        try:
            return await self._inner.send(method, url, params=params, json_body=json_body)
        finally:
            if current is not None:
                current.wire += time.perf_counter() - started

    async def aclose(self) -> None:
        await self._inner.aclose()
