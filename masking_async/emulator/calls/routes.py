"""The calls' control plane over HTTP, under ``/emulator/`` (routes added with
:func:`~masking_async.emulator.control.add_control_route`, so the admin token and the JSON
error envelope apply).

=======  ==============================  ==================================================
POST     /emulator/calls                 place a call: ``{"from", "to", "auth_id"?,
                                         "caller"?, "callee"?, "recording_fails"?}``
GET      /emulator/calls                 every call (``?session_uuid=`` narrows)
GET      /emulator/calls/{call_id}       one call
POST     /emulator/calls/settle          apply what is due, wait for its callbacks
PUT      /emulator/phones/{number}       script a number: a :class:`Phone` as JSON or text
GET      /emulator/phones                the scripted numbers
GET      /emulator/callbacks             every delivery (``?session_uuid=``, ``?event=``)
GET      /emulator/callbacks/{id}        one delivery: payload, attempts, answers
=======  ==============================  ==================================================

A script is ``{"answer_after": 2, "busy": false, "hangup_after": 30, "digits": ["1234"],
"dtmf_seconds": 3}`` (any subset) or the text form ``answer=2,hangup=30,digits=1234``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import attrs
from aiohttp import web

from masking_async.emulator.app import Handler, Refused, json_object
from masking_async.emulator.calls.call import Call, Leg
from masking_async.emulator.calls.config import Phone
from masking_async.emulator.calls.engine import CallEngine
from masking_async.emulator.calls.session_calls import epoch_text
from masking_async.emulator.control import add_control_route
from masking_async.emulator.records import StoreError

__all__ = ["CALL_ENGINE", "call_view", "phone_from", "register_call_routes"]

CALL_ENGINE: Final = web.AppKey("masking_emulator_calls", CallEngine)


def _time(epoch: float | None) -> str | None:
    return None if epoch is None else epoch_text(epoch)


def _leg_view(leg: Leg) -> dict[str, Any]:
    return {
        "call_uuid": leg.call_uuid,
        "number": leg.number,
        "role": leg.role,
        "caller_id": leg.caller_id,
        "state": leg.state.value,
        "ringing_at": _time(leg.ringing_at),
        "answered_at": _time(leg.answered_at),
        "ended_at": _time(leg.ended_at),
        "hangup_cause": leg.cause,
    }


def call_view(call: Call) -> dict[str, Any]:
    """A call as of the emulator's clock: its outcome shows once it is over."""
    return {
        "call_id": call.call_id,
        "auth_id": call.auth_id,
        "kind": call.kind,
        "from": call.caller,
        "to": call.virtual_number,
        "session_uuid": call.session_uuid,
        "placed_at": _time(call.placed_at),
        "state": "completed" if call.done else "in-progress",
        "outcome": call.outcome if call.done else None,
        "ended_at": _time(call.ended_at) if call.done else None,
        "legs": [_leg_view(leg) for leg in call.legs],
        "played": [dict(item) for item in call.played],
        "pin_attempts": list(call.pin_attempts),
        "recording": call.recording,
    }


def phone_from(value: Any, field: str) -> Phone | None:
    """A script from JSON (object or text); ``None`` stays ``None``. Raises ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, str):
        return Phone.parse(value)
    if not isinstance(value, dict):
        raise ValueError(f"{field}: a script is an object or text such as answer=2,hangup=30")
    names = {a.name for a in attrs.fields(Phone)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ValueError(f"{field}: unknown script fields {unknown}; use {sorted(names)}")
    try:
        return Phone(**value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: {exc}") from None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def place(request: web.Request) -> web.Response:
    engine = request.app[CALL_ENGINE]
    body = await json_object(request)
    try:
        unknown = sorted(
            set(body) - {"from", "to", "auth_id", "caller", "callee", "recording_fails"}
        )
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        for name in ("from", "to"):
            if name not in body:
                raise ValueError(f"{name}: required (an E.164 number)")
        call = engine.call(
            body["from"],
            body["to"],
            auth_id=body.get("auth_id"),
            caller_phone=phone_from(body.get("caller"), "caller"),
            callee_phone=phone_from(body.get("callee"), "callee"),
            recording_fails=bool(body.get("recording_fails", False)),
        )
    except ValueError as exc:
        raise Refused(400, str(exc)) from None
    except StoreError as exc:
        raise Refused(exc.status, str(exc)) from None
    return _json(call_view(call), 201)


async def list_calls(request: web.Request) -> web.Response:
    session = request.query.get("session_uuid")
    engine = request.app[CALL_ENGINE]
    engine.pump()
    calls = [c for c in engine.calls if session is None or c.session_uuid == session]
    return _json({"calls": [call_view(call) for call in calls]})


async def get_call(request: web.Request) -> web.Response:
    engine = request.app[CALL_ENGINE]
    engine.pump()
    call = engine.find(request.match_info["call_id"])
    if call is None:
        raise Refused(404, f"no call {request.match_info['call_id']}")
    return _json(call_view(call))


async def settle(request: web.Request) -> web.Response:
    engine = request.app[CALL_ENGINE]
    await engine.settle()
    states: dict[str, int] = {}
    for delivery in engine.deliveries():
        states[delivery.state] = states.get(delivery.state, 0) + 1
    return _json({"deliveries": states})


async def put_phone(request: web.Request) -> web.Response:
    engine = request.app[CALL_ENGINE]
    try:
        raw = await request.text()
        value = json.loads(raw) if raw.strip().startswith(("{", '"')) else raw
        phone = phone_from(value, "script")
        if phone is None:
            raise ValueError("script: required")
        engine.set_phone(request.match_info["number"], phone)
    except ValueError as exc:
        raise Refused(400, str(exc)) from None
    return _json({"number": request.match_info["number"], "script": attrs.asdict(phone)})


async def list_phones(request: web.Request) -> web.Response:
    phones = request.app[CALL_ENGINE].phones
    return _json({"phones": {number: attrs.asdict(phone) for number, phone in phones.items()}})


async def list_callbacks(request: web.Request) -> web.Response:
    session, event = request.query.get("session_uuid"), request.query.get("event")
    deliveries = [
        d.view()
        for d in request.app[CALL_ENGINE].deliveries()
        if (session is None or d.session_uuid == session) and (event is None or d.event == event)
    ]
    return _json({"callbacks": deliveries})


async def get_callback(request: web.Request) -> web.Response:
    wanted = request.match_info["id"]
    for delivery in request.app[CALL_ENGINE].deliveries():
        if str(delivery.id) == wanted:
            return _json(delivery.view())
    raise Refused(404, f"no callback delivery {wanted}")


def register_call_routes(app: web.Application, engine: CallEngine) -> None:
    """Add the calls' control routes (the table in the module docstring) to ``app``."""
    app[CALL_ENGINE] = engine
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/calls", place),
        ("GET", "/calls", list_calls),
        ("POST", "/calls/settle", settle),
        ("GET", "/calls/{call_id}", get_call),
        ("PUT", "/phones/{number}", put_phone),
        ("GET", "/phones", list_phones),
        ("GET", "/callbacks", list_callbacks),
        ("GET", "/callbacks/{id}", get_callback),
    ]
    for method, path, handler in routes:
        add_control_route(app, method, path, handler)
