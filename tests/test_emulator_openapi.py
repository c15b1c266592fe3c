"""The OpenAPI 3.1 document: kept in docs/, served by the emulator, true to the reference's
examples, and the emulator fuzzed from it with schemathesis (no 500, every answer conforms)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.openapi import build_document, document_text
from masking_async.emulator.process import emulator_process
from masking_async.phones import party_numbers

ROOT = Path(__file__).resolve().parents[1]
#: The reference pages' JSON examples, copied from the spec into the repository.
REFERENCE = ROOT / "tests" / "data" / "reference_examples.json"
DOCUMENT = build_document()


def _validator(name: str) -> Any:
    """A JSON Schema validator for one component, resolving refs inside the document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema_rs.validator_for(schema)


def test_docs_copy_is_the_document():
    """docs/openapi.json is exactly what the code builds (regenerate with --print-openapi)."""
    assert (ROOT / "docs" / "openapi.json").read_text() == document_text()


async def test_the_emulator_serves_the_document(masking_emulator):
    """GET /emulator/openapi.json answers the same document."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(masking_emulator.base_url + "/emulator/openapi.json") as response,
    ):
        assert response.status == 200
        assert await response.json() == DOCUMENT


def _examples() -> Iterator[tuple[str, Any]]:
    """Every JSON example of the reference pages, with the component that describes it."""
    for body in json.loads(REFERENCE.read_text())["bodies"]:
        if "meta" in body.get("response", {}):
            yield "ListResponse", body
        elif "response" in body:
            yield "RetrieveResponse", body
        elif body.get("message") == "Session updated":
            yield "UpdateResponse", body
        elif "session" in body:
            yield "CreateResponse", body
        elif "session_uuid" in body and "api_id" not in body:
            yield "Session", body


EXAMPLES = list(_examples())


def test_the_reference_has_examples_of_every_answer():
    """The examples cover the session object and every envelope the API answers with."""
    assert {name for name, _ in EXAMPLES} >= {
        "Session",
        "CreateResponse",
        "RetrieveResponse",
        "ListResponse",
        "UpdateResponse",
    }


@pytest.mark.parametrize(("component", "example"), EXAMPLES)
def test_every_reference_example_conforms(component, example):
    """Each example of the reference validates against the document's schema for it."""
    errors = [str(error) for error in _validator(component).iter_errors(example)]
    assert errors == []


def test_the_recorded_delete_answer_conforms():
    """The real API's recorded DELETE answer is what the document says a DELETE answers."""
    recorded = json.loads(
        (ROOT / "tests" / "fixtures" / "maskingSessionDeleteResponse.json").read_text()
    )
    assert _validator("DeleteResponse").is_valid(recorded)


# -- fuzzing ---------------------------------------------------------------------------------

SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


class _Fuzzed:
    """A running emulator with sessions to aim at, and fresh valid parties for creates."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.parties = party_numbers("US", start=5000)
        self.uuids: list[str] = []
        api = f"{url}/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/"
        auth = (DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN)
        with requests.Session() as http:
            for n in range(12):
                pair = {"first_party": next(self.parties), "second_party": next(self.parties)}
                extra = PIN if n % 3 == 0 else {"record": True} if n % 3 == 1 else {}
                made = http.post(api, json={**pair, **extra}, auth=auth, timeout=10).json()
                self.uuids.append(made["session_uuid"])
                if n % 4 == 0:
                    http.delete(f"{api}{made['session_uuid']}/", auth=auth, timeout=10)

    def aim(self, case: Any) -> None:
        """Point the case at the default account, a real session and parties that are valid."""
        params = case.path_parameters or {}
        if "auth_id" in params:
            params["auth_id"] = DEFAULT_AUTH_ID
        if "session_uuid" in params:
            params["session_uuid"] = self.uuids[len(str(params["session_uuid"])) % len(self.uuids)]
        creating = case.operation.method == "post" and "session_uuid" not in params
        if creating and isinstance(case.body, dict) and "first_party" in case.body:
            case.body["first_party"] = next(self.parties)
            if "second_party" in case.body:
                case.body["second_party"] = next(self.parties)


PIN = {
    "is_pin_authentication_required": True,
    "first_party_pin": "1234",
    "second_party_pin": "4321",
    "pin_prompt_play": "https://example.com/prompt.wav",
    "incorrect_pin_play": "https://example.com/wrong.mp3",
}


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[_Fuzzed]:
    """An emulator in a child process (schemathesis calls are synchronous), rate limit off."""
    with emulator_process("--rate-limit", "off", "--seed", "7") as url:
        yield _Fuzzed(url)


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzing_finds_no_500_and_every_answer_conforms(case, fuzzed):
    """Generated requests (valid and invalid) never get a 500, and every answer matches."""
    fuzzed.aim(case)
    case.call_and_validate(
        base_url=fuzzed.url,
        auth=(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
