"""The HTTP face of the emulator: routes, auth, the rate limit, faults and JSON errors.

Every API request passes one middleware, in this order: it is logged; oversized lines are
refused (414, 431); one fault rule may be drawn (see :mod:`.faults`): a "before" rule answers
now (a stall first reads the whole request, holds it, then lets it through, even if the client
has gone), an "after" rule once the operation has run; credentials are checked against the
path's auth id; the account's rate limit counts it; the handler runs. Whatever goes wrong comes
back as ``{"api_id", "error"}`` with the right status, unknown routes (404), methods (405) and
bodies over :data:`MAX_BODY_BYTES` (413) included, so clients never meet an HTML error page. A
client that hangs up is no emulator failure: its entry says ``client_gone``, never a 500.

The first version of the API (``/v1/Account/{auth_id}/Session/``, create and delete only) is
served by the same pipeline on the same store: its requests meet the ``create`` and ``expire``
fault rules, the same rate limit and the same request log.

Requests under :data:`CONTROL_PREFIX` are the control plane (:mod:`.control`): admin token,
JSON errors, but no faults, no rate limit and no request log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import attrs
from aiohttp import hdrs, web

from masking_async import spec
from masking_async.emulator import render
from masking_async.emulator.clock import Clock
from masking_async.emulator.faults import FaultInjector, FaultRule
from masking_async.emulator.records import StoreError
from masking_async.emulator.requestlog import RequestLog, RequestLogEntry
from masking_async.emulator.server_limiter import RateLimiter
from masking_async.emulator.store import Store
from masking_async.rules import (
    Violation,
    check_create,
    check_expire,
    check_legacy_create,
    check_list_filters,
    check_update,
)

__all__ = [
    "CONTROL_PREFIX",
    "LEGACY_COLLECTION",
    "MAX_BODY_BYTES",
    "PARSER_LIMIT",
    "RUNTIME",
    "Handler",
    "Refused",
    "Runtime",
    "build_app",
    "json_error",
]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What the emulator refuses, in its JSON envelope: a request target (path and query) longer
#: than this is a 414, a header line longer than this a 431 (common front-end server limits).
MAX_URL_LENGTH: Final = 8192
MAX_HEADER_LENGTH: Final = 8192
#: A body larger than this is a 413 (aiohttp's default ``client_max_size``).
MAX_BODY_BYTES: Final = 1024**2
#: The HTTP parser's own limits, raised far above the two above so that oversized lines reach
#: the app and get a JSON answer; only beyond these does aiohttp answer its plain-text 400.
PARSER_LIMIT: Final = 1024**2
#: How much of a path an error message or the request log repeats.
_SHOWN_PATH: Final = 200


@attrs.define
class Runtime:
    """What the handlers share: the state, the limiter, the faults, the log and the clock."""

    store: Store
    clock: Clock
    limiter: RateLimiter
    faults: FaultInjector
    log: RequestLog
    #: The bearer token the control plane requires (``None``: open, as on a loopback-only port).
    admin_token: str | None = None
    #: Set when the emulator shuts down, so stalled answers stop waiting.
    closing: asyncio.Event = attrs.field(factory=asyncio.Event)


RUNTIME: Final = web.AppKey("masking_emulator_runtime", Runtime)

#: The first version's sessions (the legacy overview; the Go SDK's ``Calls.CreateMaskingSession``).
LEGACY_COLLECTION: Final = spec.LEGACY_COLLECTION.rstrip("/")

#: Where the control plane lives, outside the API's ``/v1/`` namespace.
CONTROL_PREFIX: Final = "/emulator"


class Refused(Exception):
    """A request refused before any state changed: status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def _json(
    body: dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(render.error_body(message), status, headers)


def _refuse(violations: list[Violation]) -> None:
    if violations:
        raise Refused(400, "; ".join(str(v) for v in violations))


_PARAMETERS: Final = "an object of parameters"


async def json_body(request: web.Request) -> Any:
    """The JSON in the body; an empty body is ``{}`` (DELETE may carry one or not)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"malformed JSON body: {exc}") from None


async def json_object(request: web.Request, what: str = "an object") -> dict[str, Any]:
    """The JSON object in the body (see :func:`json_body`); ``what`` names it in a refusal."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise Refused(400, f"the JSON body must be {what}")
    return body


# -- handlers --------------------------------------------------------------------------------


async def create(request: web.Request) -> web.Response:
    clean, violations = check_create(await json_object(request, _PARAMETERS))
    _refuse(violations)
    record = request.app[RUNTIME].store.create(request.match_info["auth_id"], clean)
    return _json(render.create_body(record), 201)


async def retrieve(request: web.Request) -> web.Response:
    info = request.match_info
    record = request.app[RUNTIME].store.get(info["auth_id"], info["session_uuid"])
    return _json(render.retrieve_body(record))


async def list_sessions(request: web.Request) -> web.Response:
    query = dict(request.query)
    clean, violations = check_list_filters(query)
    _refuse(violations)
    auth_id = request.match_info["auth_id"]
    page = request.app[RUNTIME].store.list(auth_id, clean)
    return _json(render.list_body(auth_id, page, query))


async def update(request: web.Request) -> web.Response:
    clean, violations = check_update(await json_object(request, _PARAMETERS))
    _refuse(violations)
    info = request.match_info
    record = request.app[RUNTIME].store.update(info["auth_id"], info["session_uuid"], clean)
    return _json(render.update_body(record))


async def expire(request: web.Request) -> web.Response:
    _, violations = check_expire(await json_object(request, _PARAMETERS))
    _refuse(violations)
    info = request.match_info
    request.app[RUNTIME].store.expire(info["auth_id"], info["session_uuid"])
    return _json(render.expire_body())


async def legacy_create(request: web.Request) -> web.Response:
    """The first version's create: its own defaults and clamps, a short answer, the same store."""
    clean, violations = check_legacy_create(await json_object(request, _PARAMETERS))
    _refuse(violations)
    record = request.app[RUNTIME].store.create(request.match_info["auth_id"], clean)
    return _json(render.legacy_create_body(record), 201)


async def legacy_expire(request: web.Request) -> web.Response:
    """The first version's delete; a ``null`` body is none (the Go SDK sends one)."""
    body = await json_body(request)
    if body is not None and not isinstance(body, dict):
        raise Refused(400, f"the JSON body must be {_PARAMETERS}")
    _, violations = check_expire(body or {})
    _refuse(violations)
    info = request.match_info
    request.app[RUNTIME].store.expire(info["auth_id"], info["session_uuid"])
    return _json(render.expire_body())


#: Each handler's operation, as fault rules name them (a legacy call is the same operation).
_OPERATIONS: Final[Mapping[Handler, str]] = {
    create: "create",
    retrieve: "get",
    list_sessions: "list",
    update: "update",
    expire: "expire",
    legacy_create: "create",
    legacy_expire: "expire",
}


# -- the pipeline ----------------------------------------------------------------------------


def _basic_credentials(header: str) -> tuple[str, str]:
    """``Basic base64(login:password)`` decoded (aiohttp's ``BasicAuth`` is deprecated)."""
    scheme, _, encoded = header.strip().partition(" ")
    try:
        login, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (ValueError, UnicodeDecodeError):
        sep = ""
    if scheme.lower() != "basic" or not sep:
        raise Refused(401, "malformed Authorization header: expected HTTP basic auth")
    return login, password


def _authenticate(request: web.Request, store: Store) -> None:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if not header:
        raise Refused(401, "authentication required: HTTP basic auth with auth id and token")
    login, password = _basic_credentials(header)
    account = store.account(login)
    if account is None or not hmac.compare_digest(password.encode(), account.auth_token.encode()):
        raise Refused(401, "authentication failed: unknown auth id or wrong auth token")
    if login != request.match_info["auth_id"]:
        raise Refused(401, "the auth id in the path does not match the credentials")


async def _pause(runtime: Runtime, seconds: float) -> None:
    """Real time on purpose (client timeouts are real); cut short when the emulator stops."""
    if seconds > 0:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.closing.wait(), seconds)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer (the response returned is never sent)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


async def _misbehave(
    request: web.Request, runtime: Runtime, rule: FaultRule
) -> web.StreamResponse | None:
    """The rule's answer, or ``None`` when the request goes on (a stall, once it has held)."""
    if rule.kind == "error":
        message = f"injected fault: {rule.status}"
        return json_error(rule.status, message, rule.retry_after_header(time.time()))
    if rule.kind == "throttle":
        message = "too many requests (injected fault)"
        return json_error(429, message, rule.retry_after_header(time.time()))
    if rule.kind == "drop":
        return _drop(request)
    await _pause(runtime, rule.stall_seconds)
    return None


async def _apply(
    request: web.Request, handler: Handler, runtime: Runtime, entry: RequestLogEntry
) -> web.StreamResponse:
    """Credentials, the rate limit, then the operation; refusals become JSON errors."""
    try:
        _authenticate(request, runtime.store)
        wait = runtime.limiter.acquire(request.match_info["auth_id"])
        if wait is not None:
            entry.fault = entry.fault or "rate_limit"
            raise Refused(
                429, "too many requests: rate limit exceeded", {hdrs.RETRY_AFTER: str(wait)}
            )
        return await handler(request)
    except Refused as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except StoreError as exc:
        return json_error(exc.status, str(exc))


async def _serve(
    request: web.Request, handler: Handler, entry: RequestLogEntry
) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    operation = _OPERATIONS.get(request.match_info.handler)
    if operation is None:
        return await handler(request)  # the router's own 404 / 405, turned to JSON outside
    rule = runtime.faults.draw(operation)
    delay = runtime.faults.delay()
    if rule is not None:
        entry.fault = rule.kind
        # The whole request has arrived before the server misbehaves: a stalled request is
        # then applied even if the client gives up meanwhile, as on a slow real server.
        await request.read()
        if rule.phase == "before":
            early = await _misbehave(request, runtime, rule)
            if early is not None:
                return early
    response = await _apply(request, handler, runtime, entry)
    if rule is not None and rule.phase == "after":
        response = await _misbehave(request, runtime, rule) or response
    await _pause(runtime, delay)
    return response


def _check_size(request: web.Request) -> None:
    """Oversized request lines and headers, refused in the envelope (see the limits above)."""
    if len(request.raw_path) > MAX_URL_LENGTH:
        raise Refused(414, f"request URI too long: at most {MAX_URL_LENGTH} characters")
    for name, value in request.raw_headers:
        if len(name) + len(value) > MAX_HEADER_LENGTH:
            shown = name[:_SHOWN_PATH].decode("latin-1")
            raise Refused(
                431, f"request header {shown!r} too large: at most {MAX_HEADER_LENGTH} bytes"
            )


def _http_message(request: web.Request, exc: web.HTTPException) -> str:
    """The envelope's message for aiohttp's own refusals (routing, body size)."""
    where = f"{request.method} {request.path[:_SHOWN_PATH]}"
    if exc.status == 404:
        return f"not found: {where}"
    if exc.status == 405:
        return f"method not allowed: {where}"
    if exc.status == 413:
        return f"request body too large: at most {MAX_BODY_BYTES} bytes"
    return f"{exc.reason.lower()}: {where}"


def _check_admin(request: web.Request, runtime: Runtime) -> None:
    if runtime.admin_token is None:
        return
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), runtime.admin_token.encode()
    ):
        raise Refused(401, "the control plane needs 'Authorization: Bearer <admin token>'")


async def _enveloped(
    request: web.Request, attempt: Callable[[], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``attempt()``, with every refusal and failure answered in the JSON envelope; only a
    :class:`ConnectionError` (the client left) goes through."""
    try:
        return await attempt()
    except Refused as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        headers = {"Allow": exc.headers[hdrs.ALLOW]} if hdrs.ALLOW in exc.headers else None
        return json_error(exc.status, _http_message(request, exc), headers)
    except ConnectionError:
        raise
    except Exception:
        logger.exception("emulator failed on %s %s", request.method, request.path)
        return json_error(500, "internal server error")


async def _control(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A control-plane request: admin token, no faults, no rate limit, not in the request log."""

    async def attempt() -> web.StreamResponse:
        _check_admin(request, request.app[RUNTIME])
        return await handler(request)

    try:
        return await _enveloped(request, attempt)
    except ConnectionError:  # the client left: nobody reads an answer, nothing failed here
        return web.Response(status=499)


def _is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


@web.middleware
async def _pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    if _is_control(request.path):
        return await _control(request, handler)
    entry = runtime.log.add(
        RequestLogEntry(
            at=runtime.clock.monotonic(),
            auth_id=request.match_info.get("auth_id"),
            method=request.method,
            path=request.path[:_SHOWN_PATH],
        )
    )
    started = time.perf_counter()

    async def attempt() -> web.StreamResponse:
        _check_size(request)
        return await _serve(request, handler, entry)

    try:
        response = await _enveloped(request, attempt)
    except ConnectionError:
        # The client left before its request had fully arrived: nothing was applied, and
        # nothing failed on the emulator's side.
        entry.client_gone = True
        entry.status = 0
        return web.Response(status=499)
    entry.status = 0 if entry.fault == "drop" else response.status
    entry.elapsed = time.perf_counter() - started
    entry.client_gone = entry.fault != "drop" and (
        request.transport is None or request.transport.is_closing()
    )
    return response


def build_app(runtime: Runtime) -> web.Application:
    """The aiohttp application; every route answers with and without the trailing slash."""
    app = web.Application(middlewares=[_pipeline], client_max_size=MAX_BODY_BYTES)
    app[RUNTIME] = runtime
    collection = spec.SESSION_COLLECTION.rstrip("/")
    member = spec.SESSION_PATH.rstrip("/")
    legacy = LEGACY_COLLECTION
    routes: list[tuple[str, str, Handler]] = [
        ("POST", collection, create),
        ("GET", collection, list_sessions),
        ("GET", member, retrieve),
        ("POST", member, update),
        ("DELETE", member, expire),
        ("POST", legacy, legacy_create),
        ("DELETE", legacy + "/{session_uuid}", legacy_expire),
    ]
    for method, path, handler in routes:
        for variant in (path, path + "/"):
            app.router.add_route(method, variant, handler)
    return app
