"""Shared test helpers: a thin HTTP client for talking to an emulator as the wire sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from masking_async.callbacks import CallbackServer
from masking_async.client._redis_server import RedisServer
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, Emulator


class EmulatorHTTP:
    """Raw requests to one emulator account: status, JSON body and headers, nothing parsed.

    ``collection`` is the sessions' path under the account: ``Session`` for the first version.
    """

    def __init__(
        self,
        emulator: Emulator,
        session: aiohttp.ClientSession,
        auth_id: str = DEFAULT_AUTH_ID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        collection: str = "Masking/Session",
    ) -> None:
        self.emulator, self.session = emulator, session
        self.auth_id, self.auth_token = auth_id, auth_token
        self.collection = collection

    def url(self, session_uuid: str = "", *, slash: bool = True, auth_id: str | None = None) -> str:
        path = f"/v1/Account/{auth_id or self.auth_id}/{self.collection}"
        if session_uuid:
            path += f"/{session_uuid}"
        return self.emulator.base_url + path + ("/" if slash else "")

    async def call(
        self,
        method: str,
        session_uuid: str = "",
        *,
        slash: bool = True,
        auth: tuple[str, str] | None = None,
        path_auth_id: str | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, Any]:
        login, password = auth or (self.auth_id, self.auth_token)
        headers = {"Authorization": aiohttp.encode_basic_auth(login, password)}
        url = self.url(session_uuid, slash=slash, auth_id=path_auth_id)
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            text = await response.text()
            body = await response.json(content_type=None) if text else None
            return response.status, body, response.headers

    async def create(self, **params: Any) -> dict[str, Any]:
        """Create a session (201 expected) and return the whole create answer."""
        status, body, _ = await self.call("POST", json=params)
        assert status == 201, body
        return dict(body)

    async def list(self, **params: Any) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", params=params)
        return status, body


@pytest_asyncio.fixture
async def emulator_http_for() -> AsyncIterator[Callable[..., EmulatorHTTP]]:
    """Make an :class:`EmulatorHTTP` for any emulator (and account); closed at teardown."""
    async with aiohttp.ClientSession() as session:

        def make(emulator: Emulator, **account: str) -> EmulatorHTTP:
            return EmulatorHTTP(emulator, session, **account)

        yield make


@pytest_asyncio.fixture
async def emulator_http(
    masking_emulator: Emulator, emulator_http_for: Callable[..., EmulatorHTTP]
) -> EmulatorHTTP:
    """Raw HTTP to the ``masking_emulator`` fixture's default account."""
    return emulator_http_for(masking_emulator)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port for the whole session (no disk, no auth)."""
    with RedisServer() as server:
        yield server


@pytest_asyncio.fixture
async def callback_server() -> AsyncIterator[CallbackServer]:
    """A verifying callback receiver on a free loopback port, for the default account's token."""
    async with CallbackServer(auth_token=DEFAULT_AUTH_TOKEN) as server:
        yield server
