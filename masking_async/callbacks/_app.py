"""An ``aiohttp`` application that receives session callbacks: verify, parse, hand over, answer.

Each request is verified (V3 signature over the URL the sender used, either the account's or the
main account's header, optional nonce replay protection), parsed into a :class:`SessionEvent` or
:class:`RecordingEvent`, and awaited in the user's handler. The answer says what happened, so a
sender that retries on failure never loses an event:

=====  ================================================================================
200    the handler returned: the event is processed
400    the payload is no session event (a resend would not help)
403    the signature does not verify, or the nonce was seen before
500    the handler raised: the sender should retry (the nonce is released for the resend)
503    the handler took longer than ``handler_timeout``: it was cancelled, retry
=====  ================================================================================

Handlers should be idempotent: a retried event carries the same ``SessionUUID`` and
``SequenceNumber``, which together identify it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping

from masking_async.callbacks._events import CallbackEvent, CallbackFormatError, parse_event
from masking_async.callbacks._signature import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_MA_HEADER,
    NonceCache,
    verify_signature,
)

__all__ = ["EventHandler", "make_callback_app", "request_params"]

logger = logging.getLogger(__name__)

EventHandler = Callable[[CallbackEvent], Awaitable[None]]
_DEFAULT_TIMEOUT: Final = 10.0


def _flatten(values: MultiMapping[Any]) -> dict[str, Any]:
    """A multi-dict as a dict; a repeated key keeps all its values as a list (signatures do)."""
    flat: dict[str, Any] = {}
    for key in values:
        if key in flat:
            continue
        found = values.getall(key)
        flat[key] = found[0] if len(found) == 1 else list(found)
    return flat


async def request_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(signed, event)``: the parameters the signature covers, and all the event's values.

    GET signs the query (it is in the URL); POST signs the body's parameters (form or JSON).
    The event reads the URL's query too, under the body's values.
    """
    query = _flatten(request.query)
    if request.method == "GET":
        return {}, query
    body: dict[str, Any]
    if request.content_type == "application/json":
        try:
            loaded = json.loads(await request.text() or "{}")
        except ValueError as exc:
            raise CallbackFormatError(f"malformed JSON body: {exc}") from None
        if not isinstance(loaded, dict):
            raise CallbackFormatError("the JSON body must be an object")
        body = loaded
    else:
        body = _flatten(await request.post())
    return body, {**query, **body}


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "message": message}, status=status)


def make_callback_app(
    handler: EventHandler,
    *,
    auth_token: str | Iterable[str] | None,
    path: str = "/",
    public_url: str | None = None,
    nonces: NonceCache | None = None,
    handler_timeout: float = _DEFAULT_TIMEOUT,
) -> web.Application:
    """An application answering session and recording callbacks on ``path`` (GET and POST).

    ``auth_token``: the token(s) signatures are checked against (an account's, its
    subaccounts'); ``None`` turns verification off, for local experiments only. ``public_url``:
    the URL the sender was given when it differs from what this server sees (a proxy or tunnel
    in between); the request's path and query are appended to it. ``nonces``: refuse a nonce
    seen before (pass a :class:`NonceCache`).
    """
    tokens = None if auth_token is None else _tokens(auth_token)

    def signed_url(request: web.Request) -> str:
        if public_url is None:
            return str(request.url)
        return public_url.rstrip("/") + str(request.rel_url)

    async def receive(request: web.Request) -> web.Response:
        try:
            signed, values = await request_params(request)
        except CallbackFormatError as exc:
            return _answer(400, str(exc))
        nonce = request.headers.get(NONCE_HEADER, "")
        if tokens is not None and not _verified(request, signed_url(request), signed, tokens):
            return _answer(403, "invalid or missing X-Plivo-Signature-V3")
        if tokens is not None and nonces is not None:
            if nonces.seen(nonce):
                return _answer(403, "replayed request: this nonce was seen before")
            nonces.add(nonce)
        try:
            event = parse_event(values)
        except CallbackFormatError as exc:
            return _answer(400, str(exc))
        try:
            await asyncio.wait_for(handler(event), handler_timeout)
        except asyncio.TimeoutError:
            _release(nonces, nonce)
            logger.warning("callback handler timed out on %s", event.event_name)
            return _answer(503, f"handler did not finish within {handler_timeout:g} s; retry")
        except Exception as exc:
            _release(nonces, nonce)
            logger.exception("callback handler failed on %s", event.event_name)
            return _answer(500, f"handler failed ({type(exc).__name__}); retry")
        return _answer(200, "ok")

    app = web.Application()
    app.router.add_route("GET", path, receive)
    app.router.add_route("POST", path, receive)
    return app


def _tokens(auth_token: str | Iterable[str]) -> tuple[str, ...]:
    tokens = (auth_token,) if isinstance(auth_token, str) else tuple(auth_token)
    if not tokens or not all(tokens):
        raise ValueError("auth_token: give at least one non-empty token, or None to not verify")
    return tokens


def _verified(
    request: web.Request, url: str, params: Mapping[str, Any], tokens: tuple[str, ...]
) -> bool:
    nonce = request.headers.get(NONCE_HEADER, "")
    return any(
        verify_signature(request.method, url, params, nonce, request.headers[header], tokens)
        for header in (SIGNATURE_HEADER, SIGNATURE_MA_HEADER)
        if header in request.headers
    )


def _release(nonces: NonceCache | None, nonce: str) -> None:
    if nonces is not None:
        nonces.forget(nonce)
