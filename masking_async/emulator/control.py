"""The control plane: the emulator's state, clock, faults and request log over HTTP.

Everything lives under ``/emulator/``, outside the API's ``/v1/`` namespace, so any language's
tests can drive the emulator the way moto, WireMock or LocalStack are driven. When the emulator
has an admin token every control request needs ``Authorization: Bearer <token>``. Control
requests meet no faults and no rate limit, and stay out of the request log.

=======  ==========================  =====================================================
method   path                        what it does
=======  ==========================  =====================================================
POST     /emulator/reset             forget every session (body ``{"account": ID}``: one)
GET      /emulator/state             the whole state as JSON (see :mod:`.snapshot`)
PUT      /emulator/state             replace it with a JSON document
GET      /emulator/clock             the emulator's time and whether it is manual
POST     /emulator/clock             ``{"advance": seconds}`` (manual clock only)
GET      /emulator/faults            the fault rules, with ``id`` and ``hits``
POST     /emulator/faults            add a rule (a :class:`FaultRule` as JSON); 201
DELETE   /emulator/faults            remove every rule
DELETE   /emulator/faults/{id}       remove one rule
GET      /emulator/requests          the request log (``?account=``, ``?limit=``)
DELETE   /emulator/requests          clear it
GET      /emulator/openapi.json      the OpenAPI 3.1 document of the API (:mod:`.openapi`)
=======  ==========================  =====================================================

:func:`add_control_route` is how any module adds its own route under the prefix.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from masking_async.emulator.app import (
    CONTROL_PREFIX,
    RUNTIME,
    Handler,
    Refused,
    Runtime,
    json_body,
    json_object,
)
from masking_async.emulator.clock import ManualClock
from masking_async.emulator.faults import FaultRule
from masking_async.emulator.openapi import build_document
from masking_async.emulator.records import StoreError
from masking_async.emulator.snapshot import SnapshotError, dump_state, load_state

__all__ = ["add_control_route", "register_control", "reset"]


def add_control_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Serve ``handler`` at ``/emulator{path}``, behind the admin token, outside faults."""
    app.router.add_route(method, CONTROL_PREFIX + path, handler)


def reset(runtime: Runtime, auth_id: str | None = None) -> None:
    """Forget sessions, rate-limit history and logged requests, of one account or all."""
    runtime.store.reset(auth_id)
    runtime.limiter.reset(auth_id)
    runtime.log.clear(auth_id)


def load(runtime: Runtime, document: Mapping[str, Any]) -> None:
    """Replace the state of the accounts the document names, and their rate-limit history."""
    load_state(runtime.store, document)
    runtime.limiter.reset()


async def _reset(request: web.Request) -> web.Response:
    body = await json_object(request)
    account = body.get("account")
    if account is not None and not isinstance(account, str):
        raise Refused(400, "account: must be an auth id")
    try:
        reset(request.app[RUNTIME], account)
    except StoreError as exc:
        raise Refused(404, str(exc)) from None
    return web.json_response({"reset": account or "all"})


async def _get_state(request: web.Request) -> web.Response:
    return web.json_response(dump_state(request.app[RUNTIME].store))


async def _put_state(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        load(runtime, await json_body(request))
    except (SnapshotError, StoreError) as exc:
        raise Refused(400, str(exc)) from None
    return web.json_response(dump_state(runtime.store))


def _clock_body(runtime: Runtime) -> dict[str, Any]:
    now = runtime.clock.now()
    return {
        "now": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="microseconds"),
        "epoch": now,
        "manual": isinstance(runtime.clock, ManualClock),
    }


async def _get_clock(request: web.Request) -> web.Response:
    return web.json_response(_clock_body(request.app[RUNTIME]))


async def _post_clock(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await json_object(request)
    seconds = body.get("advance")
    if (
        set(body) != {"advance"}
        or isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
    ):
        raise Refused(400, 'the body must be {"advance": seconds}')
    if not (math.isfinite(seconds) and seconds >= 0):
        raise Refused(400, "advance: must be a finite number of seconds >= 0")
    if not isinstance(runtime.clock, ManualClock):
        raise Refused(409, "the clock is the system clock: start the emulator with --clock manual")
    runtime.clock.advance(seconds)
    return web.json_response(_clock_body(runtime))


async def _list_faults(request: web.Request) -> web.Response:
    rules = request.app[RUNTIME].faults.rules()
    return web.json_response({"rules": [active.to_json() for active in rules]})


async def _add_fault(request: web.Request) -> web.Response:
    try:
        rule = FaultRule.from_json(await json_body(request))
    except (ValueError, TypeError) as exc:
        raise Refused(400, str(exc)) from None
    return web.json_response(request.app[RUNTIME].faults.add(rule).to_json(), status=201)


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[RUNTIME].faults.clear()
    return web.json_response({"rules": []})


async def _remove_fault(request: web.Request) -> web.Response:
    text = request.match_info["rule_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise Refused(404, f"no fault rule {text[:40]!r}")
    if not request.app[RUNTIME].faults.remove(int(text)):
        raise Refused(404, f"no fault rule {text}")
    return web.json_response({"removed": int(text)})


async def _requests(request: web.Request) -> web.Response:
    account = request.query.get("account")
    limit_text = request.query.get("limit", "")
    if limit_text and not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) < 10):
        raise Refused(400, "limit: must be a whole number")
    entries = [
        entry
        for entry in request.app[RUNTIME].log.entries()
        if account is None or entry.auth_id == account
    ]
    if limit_text:
        limit = int(limit_text)
        entries = entries[-limit:] if limit else []  # the most recent ones
    return web.json_response({"requests": [entry.to_json() for entry in entries]})


@functools.cache
def _openapi_text() -> str:
    """The document never changes while the process runs: built once, not per request."""
    return json.dumps(build_document())


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(text=_openapi_text(), content_type="application/json")


async def _clear_requests(request: web.Request) -> web.Response:
    request.app[RUNTIME].log.clear(request.query.get("account"))
    return web.json_response({"requests": []})


def register_control(app: web.Application) -> None:
    """Add the control plane's routes (the table in the module docstring) to the app."""
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/reset", _reset),
        ("GET", "/state", _get_state),
        ("PUT", "/state", _put_state),
        ("GET", "/clock", _get_clock),
        ("POST", "/clock", _post_clock),
        ("GET", "/faults", _list_faults),
        ("POST", "/faults", _add_fault),
        ("DELETE", "/faults", _clear_faults),
        ("DELETE", "/faults/{rule_id}", _remove_fault),
        ("GET", "/requests", _requests),
        ("DELETE", "/requests", _clear_requests),
        ("GET", "/openapi.json", _openapi),
    ]
    for method, path, handler in routes:
        add_control_route(app, method, path, handler)
