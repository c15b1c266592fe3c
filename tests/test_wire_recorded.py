"""The real API's recorded answers (the official SDK's fixtures): our client reads every one,
and the emulator answers in the same form where the reference's examples are silent."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from masking_async import MaskingClient
from masking_async.client import ClientOptions, RateLimit
from masking_async.client._transport import Response
from masking_async.wire import make_converter, read_page, read_session

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONVERTER = make_converter()


def _recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"maskingSession{name}Response.json").read_text())
    return data


@pytest.mark.parametrize("name", ["Create", "Get", "Update"])
def test_every_recorded_session_answer_reads_completely(name: str) -> None:
    """Create, retrieve and update answers read with no field left unreadable."""
    session = read_session(CONVERTER, _recorded(name))
    assert session.unreadable == ()
    assert session.created_time is not None
    assert session.created_time.microsecond > 0


def test_the_recorded_update_with_a_doubled_zone_reads() -> None:
    """``2023-07-06 10:53:32.814078 +0000 +0000`` is a UTC time with its microseconds."""
    session = read_session(CONVERTER, _recorded("Update"))
    assert session.created_time == datetime(2023, 7, 6, 10, 53, 32, 814078, tzinfo=timezone.utc)
    assert session.duration == 612


def test_the_recorded_list_reads_every_object() -> None:
    """All seven recorded list objects read completely, play URLs included."""
    page = read_page(CONVERTER, _recorded("List"))
    assert page.meta.total_count == len(page.objects) == 7
    assert all(session.unreadable == () for session in page.objects)
    assert all(session.first_party_play_url for session in page.objects)


class _Replay:
    """A transport that answers every request with one recorded body."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        self.status, self.body = status, json.dumps(body).encode()

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        return Response(self.status, {"Content-Type": "application/json"}, self.body)

    async def aclose(self) -> None:
        pass


def _client(status: int, body: Mapping[str, Any]) -> MaskingClient:
    options = ClientOptions(rate_limit=RateLimit.off())
    return MaskingClient(
        "MAXXXXXXXXXXXXXXXXXX", "t", transport=_Replay(status, body), options=options
    )


async def test_the_client_reports_the_recorded_update_as_applied() -> None:
    """An update answered with the recorded body is a success with the session read."""
    async with _client(200, _recorded("Update")) as client:
        session = await client.update_session(
            "7b5c5e17-e1e9-4ccd-a480-42f5c97fbe96", {"record": True}
        )
    assert session.record is True
    assert session.modified_time is not None


async def test_the_client_accepts_the_recorded_delete_answer() -> None:
    """``{"api_id", "message": "Session Deleted"}`` is a successful expire."""
    async with _client(200, _recorded("Delete")) as client:
        assert await client.expire_session("7b5c5e17-e1e9-4ccd-a480-42f5c97fbe96") is None


async def test_a_2xx_update_with_an_odd_field_is_still_a_success() -> None:
    """A field the client cannot read does not turn an applied update into a failure."""
    body = _recorded("Update")
    body["session"]["ring_timeout"] = "two minutes"
    async with _client(200, body) as client:
        session = await client.update_session(body["session"]["session_uuid"], {"record": True})
    assert session.unreadable == ("ring_timeout",)
    assert session.record is True
