"""Reading both response shapes of the spec, and refusing unreadable ones clearly."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from masking_async import ResponseFormatError
from masking_async.wire import make_converter, read_page, read_session

#: The reference's JSON examples, copied into the repository so a fresh clone tests them.
EXAMPLES = Path(__file__).resolve().parent / "data" / "spec_examples.json"
CONVERTER = make_converter()


def test_every_example_of_the_reference_reads() -> None:
    """The reference's create, retrieve, list and update examples all read into models."""
    blocks = json.loads(EXAMPLES.read_text())["examples"]
    sessions = [
        read_session(CONVERTER, b)
        for b in blocks
        if "response" not in b or "meta" not in b["response"]
    ]
    pages = [read_page(CONVERTER, b) for b in blocks if "meta" in b.get("response", {})]
    assert sessions
    assert pages
    assert pages[0].objects[0].resource_uri.endswith("/")


CURRENT = {
    "api_id": "ae245217",
    "session_uuid": "4189591e",
    "virtual_number": "+912269947011",
    "message": "Session created",
    "session": {
        "first_party": "919003459051",
        "second_party": "918197241073",
        "virtual_number": "912269947011",
        "status": "active",
        "pin_ prompt_play": "https://play.example.com/pin_prompt.wav",
        "pin_retry_wait": "5",
        "session_uuid": "4189591e",
        "callback_url": "",
        "created_time": "2024-01-03 13:35:51 +0000 UTC",
        "modified_time": "2024-01-03 13:35:51.123456789 +0000 UTC",
        "duration": 1800,
        "amount": 0,
        "interaction": None,
        "last_interaction_time": "",
        "a_future_field": {"x": 1},
    },
}

OLD = {
    "session_uuid": "abcd-1234-ab12-cd34",
    "virtual_number": "+12205550020",
    "status": "active",
    "first_party": "+14155552345",
    "second_party": "+12165554567",
    "record": "false",
    "recording_callback_url": "null",
    "record_file_format": None,
    "session_expiry": "3600",
    "call_time_limit": "3600",
    "initiate_call_to_first_party": "false",
    "ring_timeout": "120",
    "created_time": "2023-08-17 21:26:44",
    "modified_time": "null",
    "total_call_count": "0",
    "total_call_amount": "0",
    "interaction": "{}",
}


def test_current_shape() -> None:
    """Parties gain their +, the odd PIN key and string numbers are read, extras are kept."""
    session = read_session(CONVERTER, CURRENT)
    assert session.first_party == "+919003459051"
    assert session.virtual_number == "+912269947011"
    assert session.pin_prompt_play == "https://play.example.com/pin_prompt.wav"
    assert session.pin_retry_wait == 5
    assert session.callback_url is None
    assert session.created_time == datetime(2024, 1, 3, 13, 35, 51, tzinfo=timezone.utc)
    assert session.modified_time is not None
    assert session.modified_time.microsecond == 123456
    assert session.amount == Decimal(0)
    assert session.interaction == ()
    assert session.extra == {"a_future_field": {"x": 1}}


def test_old_all_strings_shape() -> None:
    """The older shape's string booleans, "null", numbers as strings and session_expiry read."""
    session = read_session(CONVERTER, OLD)
    assert session.record is False
    assert session.initiate_call_to_first_party is False
    assert session.recording_callback_url is None
    assert session.modified_time is None
    assert session.duration == 3600
    assert session.ring_timeout == 120
    assert session.total_call_amount == Decimal(0)
    assert session.interaction == ()
    assert session.created_time == datetime(2023, 8, 17, 21, 26, 44, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"api_id": "x"},
        {"session": {"first_party": "1"}},
        {"session": {"session_uuid": ["u"]}},
        {"session": {"session_uuid": None}},
    ],
)
def test_unreadable_answers_are_a_clear_error(body: Any) -> None:
    """An answer with no session, or none with a session_uuid, is a ResponseFormatError."""
    with pytest.raises(ResponseFormatError, match="unreadable"):
        read_session(CONVERTER, body)


@pytest.mark.parametrize(
    ("field", "value"),
    [("record", "maybe"), ("created_time", "yesterday"), ("interaction", 42)],
)
def test_a_partly_unreadable_session_still_reads(field: str, value: Any) -> None:
    """A 2xx session with an unreadable field is read; the field is unset, kept and named."""
    session = read_session(
        CONVERTER, {"session": {"session_uuid": "u", "duration": 60, field: value}}
    )
    assert (session.session_uuid, session.duration) == ("u", 60)
    assert session.unreadable == (field,)
    assert session.extra[field] == value


def test_unreadable_page() -> None:
    """A list answer without objects is a ResponseFormatError."""
    with pytest.raises(ResponseFormatError):
        read_page(CONVERTER, {"response": {"meta": {}}})
