"""The operations a load run performs, over a pool of sessions it creates and cleans up itself."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import anyio
import anyio.abc

from masking_async.client import MaskingClient
from masking_async.errors import (
    APIError,
    RateLimitedError,
    RequestTimeout,
    TransportError,
)
from masking_async.models import CreateSessionRequest, UpdateSessionRequest
from masking_async.phones import party_pairs

__all__ = ["SessionPool", "classify"]

_CLEANUP_CONCURRENCY = 16


def classify(exc: BaseException) -> str:
    """The kind of a failure, as the report counts it."""
    if isinstance(exc, RateLimitedError):
        return "429"
    if isinstance(exc, APIError):
        return str(exc.status)
    if isinstance(exc, RequestTimeout):
        return "timeout"
    if isinstance(exc, TransportError):
        return "connection"
    return type(exc).__name__


class SessionPool:
    """Sessions this run created and that are still active; reads and writes pick from it.

    Picking is O(1): a list with swap-removal, so a long run does not slow down as it grows.
    """

    def __init__(self, client: MaskingClient, *, seed: int = 0, first_pair: int = 0) -> None:
        self._client = client
        self._active: list[str] = []
        self._rng = random.Random(seed)
        self._pairs: Iterator[tuple[str, str]] = party_pairs(
            10**7, countries=("US", "GB", "IN"), start=first_pair
        )
        self.created = 0

    def __len__(self) -> int:
        return len(self._active)

    async def perform(self, op: str) -> None:
        """Run one operation; with an empty pool a read or write becomes a create."""
        if op == "list":
            await self._client.list_sessions({"status": "active"}, limit=20)
        elif op == "create" or not self._active:
            await self.create()
        elif op == "get":
            await self._client.get_session(self._pick())
        elif op == "update":
            await self._client.update_session(
                self._pick(), UpdateSessionRequest(ring_timeout=self._rng.randint(30, 120))
            )
        elif op == "expire":
            await self._client.expire_session(self._take())
        else:
            raise ValueError(f"unknown operation {op!r}")

    async def create(self) -> None:
        first, second = next(self._pairs)
        session = await self._client.create_session(
            CreateSessionRequest(first_party=first, second_party=second)
        )
        self.created += 1
        self._active.append(session.session_uuid)

    def _pick(self) -> str:
        return self._active[self._rng.randrange(len(self._active))]

    def _take(self) -> str:
        index = self._rng.randrange(len(self._active))
        self._active[index], self._active[-1] = self._active[-1], self._active[index]
        return self._active.pop()

    async def cleanup(self, client: MaskingClient) -> int:
        """Expire every session still in the pool through ``client``; returns how many."""
        uuids, self._active = self._active, []
        send, receive = anyio.create_memory_object_stream[str](_CLEANUP_CONCURRENCY)

        async def worker(stream: anyio.abc.ObjectReceiveStream[str]) -> None:
            async with stream:
                async for uuid in stream:
                    # Already gone (expired by time or by the run): nothing to clean.
                    with contextlib.suppress(APIError):
                        await client.expire_session(uuid)

        async with anyio.create_task_group() as group:
            with receive:
                for _ in range(_CLEANUP_CONCURRENCY):
                    group.start_soon(worker, receive.clone())
            async with send:
                for uuid in uuids:
                    await send.send(uuid)
        return len(uuids)
