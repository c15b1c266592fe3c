"""A callback receiver on a local port: ``async with CallbackServer(...) as server:``.

It serves :func:`make_callback_app` on 127.0.0.1 (a free port unless told otherwise), keeps every
accepted event in ``server.events`` (in arrival order) and, with a handler, awaits it first. It
is what ``masking-async callbacks listen`` runs, and what tests point sessions' callback URLs at.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

from masking_async._serving import serve
from masking_async.callbacks._app import EventHandler, make_callback_app
from masking_async.callbacks._events import CallbackEvent
from masking_async.callbacks._signature import NonceCache

__all__ = ["CallbackServer"]


class CallbackServer:
    """Receive callbacks on ``http://host:port/`` (``url``); accepted events land in ``events``."""

    def __init__(
        self,
        *,
        auth_token: str | Iterable[str] | None,
        handler: EventHandler | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
        nonces: NonceCache | None = None,
        public_url: str | None = None,
        handler_timeout: float = 10.0,
    ) -> None:
        self.events: list[CallbackEvent] = []
        self.host, self._port, self.path = host, port, path
        self._handler = handler

        async def keep(event: CallbackEvent) -> None:
            if self._handler is not None:
                await self._handler(event)
            self.events.append(event)

        self.app = make_callback_app(
            keep,
            auth_token=auth_token,
            path=path,
            public_url=public_url,
            nonces=nonces,
            handler_timeout=handler_timeout,
        )
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("the callback server is not running: use 'async with'")
        return self._port

    @property
    def url(self) -> str:
        """The URL to give as ``callback_url`` / ``recording_callback_url``."""
        return f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        self._port = await serve(runner, self.host, self._port)
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> CallbackServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
