"""The OpenAPI 3.1 document of the API as the emulator serves it (``/emulator/openapi.json``).

Built from the same facts the emulator and the client use (:mod:`masking_async.spec` for the
arguments, their limits and the paths), so it cannot drift from the code; ``docs/openapi.json``
is this document written out (``masking-async emulator --print-openapi > docs/openapi.json``), and a
test keeps the two equal. The test suite validates the reference's examples against it and
fuzzes the emulator from it with schemathesis.
"""

from __future__ import annotations

import json
from typing import Any, Final

from masking_async import spec
from masking_async.emulator.app import MAX_BODY_BYTES

__all__ = ["build_document", "document_text"]

Schema = dict[str, Any]

_TIMESTAMP: Final = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})? \+0000 UTC$"
_FILTER_TIME: Final = r"^\s*\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d(\.\d{1,6})?)?\s*$"
_PHONE: Final = {"type": "string", "pattern": r"^\+?[0-9]{6,15}$"}
_BOOLEAN: Final = {
    "description": "A JSON boolean, or the strings true/false (as the update page sends them).",
    "anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}],
}
_URL: Final = {"type": "string", "maxLength": spec.MAX_URL_LENGTH, "format": "uri"}
_METHOD: Final = {"type": "string", "enum": list(spec.METHODS)}
_RECORD_FORMAT: Final = {"type": "string", "enum": list(spec.RECORD_FORMATS)}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _integer(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _argument(param: spec.Param) -> Schema:
    """The schema of one argument, from its facts (the checks themselves live in ``rules``)."""
    if param.kind == "integer":
        low, high = spec.bounds(param.name)
        if param.clamped:
            return {"type": "integer", "description": f"Clamped into {low}-{high}."}
        return _integer(low, high)
    if param.kind == "choice":
        return {"type": "string", "enum": list(param.choices)}
    if param.kind == "subaccount":
        return {"type": "string", "pattern": f"^{param.pattern}$"}
    if param.kind == "pin":
        return {"type": ["string", "integer"], "pattern": f"^{param.pattern}$"}
    by_kind: dict[str, Schema] = {
        "phone": _PHONE,
        "boolean": _BOOLEAN,
        "url": _URL,
        "play_url": _URL,
    }
    return by_kind[param.kind]


#: Request argument schemas by name.
_ARGUMENTS: Final[dict[str, Schema]] = {
    name: _argument(param) for name, param in spec.PARAMS.items()
}


def _legacy_arguments() -> dict[str, Schema]:
    """The first version's arguments: the current schemas, its defaults and its lenient rules."""
    low, high = spec.bounds("call_time_limit")
    expiry, limit = spec.LEGACY_DEFAULTS["session_expiry"], spec.LEGACY_DEFAULTS["call_time_limit"]
    overrides: dict[str, Schema] = {
        "session_expiry": {
            "description": f"Default {expiry}; 0 counts as not sent (the Go SDK always sends it).",
            "anyOf": [_ARGUMENTS["session_expiry"], {"const": 0}],
        },
        "call_time_limit": {
            "description": (
                f"Default {limit}; an integer is clamped into {low}-{high}, anything else"
                f" becomes {limit}: never refused."
            ),
        },
    }
    return {name: overrides.get(name, _ARGUMENTS[name]) for name in spec.LEGACY_CREATE_PARAMS}


def _session() -> Schema:
    text = {"type": "string"}
    # The reference types amounts as strings and shows 0 in its examples; sessions with calls
    # answer decimal text ("0.05000"), those without the number 0.
    amount = {"type": ["number", "string"]}
    time = {"type": "string", "pattern": _TIMESTAMP}
    always: dict[str, Schema] = {
        "first_party": text,
        "second_party": {"type": ["string", "null"]},
        "virtual_number": text,
        "status": {"type": "string", "enum": ["active", "in-progress", "expired"]},
        "initiate_call_to_first_party": {"type": "boolean"},
        "session_uuid": text,
        "callback_url": text,
        "callback_method": _METHOD,
        "created_time": time,
        "modified_time": time,
        "expiry_time": time,
        "duration": {"type": "integer"},
        "amount": amount,
        "call_time_limit": {"type": "integer"},
        "ring_timeout": {"type": "integer"},
        "record": {"type": "boolean"},
        "record_file_format": _RECORD_FORMAT,
        "recording_callback_url": text,
        "recording_callback_method": _METHOD,
        "interaction": {"type": ["null", "object", "array"]},
        "total_call_amount": amount,
        "total_call_count": {"type": "integer"},
        "total_call_billed_duration": {"type": "integer"},
        "total_session_amount": amount,
        "last_interaction_time": text,
    }
    optional: dict[str, Schema] = {
        # The reference's examples leave these out; recorded answers always carry them.
        "first_party_play_url": text,
        "second_party_play_url": text,
        "subaccount": text,
        "resource_uri": text,
        "first_party_pin": text,
        "second_party_pin": text,
        "is_pin_authentication_required": {"type": "boolean"},
        "generate_pin": {"type": "boolean"},
        "generate_pin_length": {"type": "integer"},
        "pin_ prompt_play": text,
        "pin_prompt_play": text,
        "pin_retry": {"type": "integer"},
        "pin_retry_wait": {"type": ["string", "integer"]},
        "incorrect_pin_play": text,
        "unknown_caller_play": text,
        "force_pin_authentication": {"type": "boolean"},
    }
    return {
        "type": "object",
        "properties": {**always, **optional},
        "required": sorted(always),
        "additionalProperties": False,
    }


def _envelope(properties: dict[str, Schema]) -> Schema:
    return {
        "type": "object",
        "properties": {"api_id": {"type": "string"}, **properties},
        "required": ["api_id", *properties],
        "additionalProperties": False,
    }


def _schemas() -> dict[str, Schema]:
    text = {"type": "string"}
    link = {"type": ["string", "null"]}
    meta = {
        "type": "object",
        "properties": {
            "limit": {"type": "integer"},
            "next": link,
            "offset": {"type": "integer"},
            "previous": link,
            "total_count": {"type": "integer"},
        },
        "required": ["limit", "next", "offset", "previous", "total_count"],
        "additionalProperties": False,
    }
    page = {
        "type": "object",
        "properties": {"meta": meta, "objects": {"type": "array", "items": _ref("Session")}},
        "required": ["meta", "objects"],
        "additionalProperties": False,
    }
    return {
        "Session": _session(),
        "Error": _envelope({"error": text}),
        "CreateResponse": _envelope(
            {
                "session_uuid": text,
                "virtual_number": text,
                "message": text,
                "session": _ref("Session"),
            }
        ),
        "LegacyCreateResponse": _envelope(
            {"session_uuid": text, "virtual_number": text, "message": text}
        ),
        "RetrieveResponse": _envelope({"response": _ref("Session")}),
        "ListResponse": _envelope({"response": page}),
        "UpdateResponse": _envelope({"message": text, "session": _ref("Session")}),
        "DeleteResponse": _envelope({"message": text}),
        "CreateSession": {
            "type": "object",
            "properties": dict(_ARGUMENTS),
            "required": ["first_party"],
            "additionalProperties": False,
        },
        "LegacyCreateSession": {
            "type": "object",
            "properties": _legacy_arguments(),
            "required": ["first_party", "second_party"],
            "additionalProperties": False,
        },
        "UpdateSession": {
            "type": "object",
            "properties": {
                **{name: _ARGUMENTS[name] for name in spec.UPDATE_PARAMS},
                "session_uuid": text,
            },
            "minProperties": 1,
            "additionalProperties": False,
        },
        "ExpireSession": {
            "type": "object",
            "properties": {"session_uuid": text},
            "additionalProperties": False,
        },
    }


def _json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


_ERRORS: Final = {
    "400": "Invalid arguments, every broken rule named (field: rule; ...)",
    "401": "Missing or wrong credentials, or another account's path",
    "404": "No such session (or account, or path)",
    "405": "Method not allowed on this path",
    "413": f"Body larger than {MAX_BODY_BYTES} bytes",
    "414": "Request target longer than 8,192 characters",
    "429": "Rate limited (or an injected throttle); see Retry-After",
    "431": "A header line longer than 8,192 bytes",
    "500": "An injected fault (fault rules only)",
    "502": "An injected fault (fault rules only)",
    "503": "An injected fault (fault rules only)",
    "504": "An injected fault (fault rules only)",
}


def _operation(op_id: str, summary: str, status: str, response: str, **extra: Any) -> Schema:
    responses: dict[str, Schema] = {
        status: {"description": summary, "content": _json_content(_ref(response))},
    }
    for code, description in _ERRORS.items():
        responses[code] = {"description": description, "content": _json_content(_ref("Error"))}
    responses["429"]["headers"] = {
        "Retry-After": {"description": "Whole seconds to wait", "schema": {"type": "string"}}
    }
    return {"operationId": op_id, "summary": summary, "responses": responses, **extra}


def _body(name: str, *, required: bool) -> Schema:
    return {"required": required, "content": _json_content(_ref(name))}


def _list_parameters() -> list[Schema]:
    def query(name: str, schema: Schema) -> Schema:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    time = {"type": "string", "pattern": _FILTER_TIME}
    parameters = [
        query("first_party", _PHONE),
        query("second_party", _PHONE),
        query("virtual_number", _PHONE),
        query("status", {"type": "string", "enum": list(spec.LIST_STATUSES)}),
        query("subaccount", _ARGUMENTS["subaccount"]),
        query("limit", _integer(1, spec.PAGE_SIZE)),
        query("offset", {"type": "integer", "minimum": 0}),
    ]
    for op in spec.FILTER_OPERATORS:
        parameters.append(query(f"created_time{op}", time))
        parameters.append(query(f"expiry_time{op}", time))
        parameters.append(query(f"duration{op}", {"type": "integer", "minimum": 0}))
    return parameters


def _path_parameter(name: str, schema: Schema) -> Schema:
    """A parameter of the path: always required, since it picks the resource."""
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _info() -> Schema:
    """The document's title and the conventions every operation shares."""
    return {
        "title": "Masking Session API (as emulated by masking_async)",
        "version": "1",
        "description": (
            "Number-masking sessions: create, retrieve, list, update, expire. Every error"
            " answers {api_id, error}. Paths also answer without the trailing slash."
            f" The first version's create and delete ({spec.LEGACY_COLLECTION}) make"
            " and end the same sessions."
        ),
    }


def _session_paths(auth_id: Schema, session_uuid: Schema) -> dict[str, Schema]:
    """The current version: the collection (create, list) and one session (get, update, expire)."""
    collection, member = spec.SESSION_COLLECTION, spec.SESSION_PATH
    return {
        collection: {
            "parameters": [auth_id],
            "post": _operation(
                "createSession",
                "Create a session",
                "201",
                "CreateResponse",
                requestBody=_body("CreateSession", required=True),
            ),
            "get": _operation(
                "listSessions",
                "List sessions, newest first",
                "200",
                "ListResponse",
                parameters=_list_parameters(),
            ),
        },
        member: {
            "parameters": [auth_id, session_uuid],
            "get": _operation("getSession", "Retrieve a session", "200", "RetrieveResponse"),
            "post": _operation(
                "updateSession",
                "Update an active session",
                "200",
                "UpdateResponse",
                requestBody=_body("UpdateSession", required=True),
            ),
            "delete": _operation(
                "expireSession",
                "Expire a session now",
                "200",
                "DeleteResponse",
                requestBody=_body("ExpireSession", required=False),
            ),
        },
    }


def _legacy_paths(auth_id: Schema, session_uuid: Schema) -> dict[str, Schema]:
    """The first version's create and delete, kept apart: its defaults and answers differ."""
    legacy = spec.LEGACY_COLLECTION
    return {
        legacy: {
            "parameters": [auth_id],
            "post": _operation(
                "createLegacySession",
                "Create a session (first version): its own defaults, a short answer",
                "201",
                "LegacyCreateResponse",
                requestBody=_body("LegacyCreateSession", required=True),
            ),
        },
        legacy + "{session_uuid}/": {
            "parameters": [auth_id, session_uuid],
            "delete": _operation(
                "expireLegacySession",
                "Expire a session now (first version; a null body counts as none)",
                "200",
                "DeleteResponse",
                requestBody=_body("ExpireSession", required=False),
            ),
        },
    }


def _paths() -> dict[str, Schema]:
    """Every path, both versions sharing the same path parameters."""
    auth_id = _path_parameter("auth_id", {"type": "string", "pattern": r"^(MA|SA)[A-Za-z0-9]{18}$"})
    session_uuid = _path_parameter("session_uuid", {"type": "string"})
    return {**_session_paths(auth_id, session_uuid), **_legacy_paths(auth_id, session_uuid)}


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "servers": [{"url": "http://127.0.0.1:8180"}],
        "security": [{"basicAuth": []}],
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": _schemas(),
        },
        "paths": _paths(),
    }


def document_text() -> str:
    """The document as ``docs/openapi.json`` keeps it."""
    return json.dumps(build_document(), indent=2) + "\n"
