"""The official ``plivo`` SDK against the emulator: its calls work and its errors map."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import islice
from typing import Any

import plivo
import plivo.exceptions
import plivo.rest.client
import pytest

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, Emulator
from masking_async.phones import party_numbers

A, B, C = islice(party_numbers("US", start=1700), 3)
_BASE_URIS = (
    "API_VOICE_BASE_URI",
    "PLIVO_API_BASE_URI",
    "API_VOICE_BASE_URI_FALLBACK_1",
    "API_VOICE_BASE_URI_FALLBACK_2",
)


@pytest.fixture
def sdk(masking_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run a call of a plivo client pointed at the emulator, in a thread (the SDK blocks)."""
    for name in _BASE_URIS:
        monkeypatch.setattr(plivo.rest.client, name, f"{masking_emulator.base_url}/v1/Account")

    async def call(method: str, *args: Any, token: str = DEFAULT_AUTH_TOKEN, **kwargs: Any) -> Any:
        def blocking() -> Any:
            client = plivo.RestClient(DEFAULT_AUTH_ID, token)
            return getattr(client.masking_sessions, method)(*args, **kwargs)

        return await asyncio.to_thread(blocking)

    return call


async def test_sdk_create_get_update_list_delete(sdk, masking_emulator):
    """The SDK's five calls succeed and read back what the emulator holds."""
    created = await sdk("create_masking_session", first_party=A, second_party=B, record=True)
    uuid = created.session_uuid
    assert created.virtual_number.startswith("+")
    got = await sdk("get_masking_session", uuid)
    assert got.response.first_party == A[1:]
    assert got.response.record is True
    updated = await sdk("update_masking_session", uuid, session_expiry=7200)
    assert updated.session.duration == 7200
    listed = await sdk("list_masking_session", first_party=A, limit=5)
    assert [o.session_uuid for o in listed.response.objects] == [uuid]
    assert listed.response.meta.total_count == 1
    await sdk("delete_masking_session", uuid)
    assert masking_emulator.store.get(DEFAULT_AUTH_ID, uuid).status == "expired"
    paths = {e.path.endswith("/") for e in masking_emulator.request_log}
    assert paths == {True}  # the SDK always sends the trailing slash


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (
            ("create_masking_session",),
            {"first_party": A, "second_party": A},
            plivo.exceptions.ValidationError,
        ),
        (("get_masking_session", "no-such-session"), {}, plivo.exceptions.ResourceNotFoundError),
        (("delete_masking_session", "nope"), {}, plivo.exceptions.ResourceNotFoundError),
        (("list_masking_session",), {"token": "wrong"}, plivo.exceptions.AuthenticationError),
    ],
)
async def test_sdk_maps_emulator_errors(sdk, args, kwargs, error):
    """400, 404 and 401 from the emulator become the SDK's own error classes."""
    with pytest.raises(error):
        await sdk(*args, **kwargs)


async def test_sdk_validation_error_names_the_field(sdk):
    """The SDK's ValidationError carries the emulator's message, field and rule."""
    with pytest.raises(plivo.exceptions.ValidationError, match="session_expiry: must be between"):
        await sdk("create_masking_session", first_party=A, second_party=C, session_expiry=10)
