"""How bytes move: the one seam tests swap, and the one place aiohttp errors become ours."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import attrs
import yarl

from masking_async.client._options import ClientOptions
from masking_async.errors import ConnectError, RequestTimeout, TransportError

__all__ = ["AiohttpTransport", "Response", "Transport", "map_transport_errors"]


@attrs.frozen
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Sends one request and returns the answer; raises TransportError when there is none."""

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response: ...

    async def aclose(self) -> None: ...


def _why_not_connected(exc: aiohttp.ClientError) -> str:
    """The cause of a connection that could not be opened, in a few lower-case words."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "no connection in time"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate was refused"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "no such host"
    code = exc.os_error.errno if isinstance(exc, aiohttp.ClientConnectorError) else None
    return os.strerror(code).lower() if code else "the connection could not be opened"


class map_transport_errors:
    """aiohttp and asyncio failures → our TransportError tree (no credentials in messages).

    A connection that could not be opened is a :class:`ConnectError`: nothing was sent. A class
    rather than a generator context manager: every request enters one.
    """

    __slots__ = ("_method", "_url")

    def __init__(self, method: str, url: str) -> None:
        self._method, self._url = method, url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        method, url = self._method, self._url
        if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
            origin = str(yarl.URL(url).origin())
            raise ConnectError(
                _why_not_connected(exc), origin=origin, method=method, url=url
            ) from exc
        if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            raise RequestTimeout("no answer in time", method=method, url=url) from exc
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            raise TransportError(type(exc).__name__, method=method, url=url) from exc


class AiohttpTransport:
    """One pooled ``aiohttp`` session per client: keep-alive, TLS verified, basic auth.

    The connector's ``limit`` is ``max_connections``, the number of slots the client hands out
    before each send, so aiohttp never queues for a connection here and its ``connect`` timeout is
    the TCP/TLS handshake alone; waiting for a slot is the client's, bounded by ``Timeouts.pool``.
    """

    def __init__(self, auth_id: str, auth_token: str, options: ClientOptions) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=options.max_connections, ssl=True),
            timeout=aiohttp.ClientTimeout(
                total=options.timeouts.total, connect=options.timeouts.connect
            ),
            headers={
                "Accept": "application/json",
                "User-Agent": _user_agent(),
                "Authorization": _basic_auth(auth_id, auth_token),
            },
            json_serialize=json.dumps,
        )

    def __repr__(self) -> str:
        return "<AiohttpTransport>"

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        with map_transport_errors(method, url):
            async with self._session.request(method, url, params=params, json=json_body) as resp:
                # The headers as aiohttp keeps them (case-insensitive), not copied.
                return Response(resp.status, resp.headers, await resp.read())

    async def aclose(self) -> None:
        await self._session.close()


def _basic_auth(auth_id: str, auth_token: str) -> str:
    return "Basic " + base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode("ascii")


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"masking-async/{version('masking_async')}"
    except PackageNotFoundError:
        return "masking-async"
