"""MaskingClient against a real emulator on loopback: every call and every error mapping."""

from __future__ import annotations

import logging

import pytest

from masking_async import (
    AuthenticationError,
    CallTrace,
    ClientOptions,
    ConfigurationError,
    CreateSessionRequest,
    InvalidRequestError,
    MaskingClient,
    NotFoundError,
    RequestValidationError,
    RetryPolicy,
    UpdateSessionRequest,
)
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, Emulator

PAIR = {"first_party": "+14155552345", "second_party": "+12165554567"}
FAST = ClientOptions(retry=RetryPolicy(wait=False))


def client(emulator: Emulator, token: str = DEFAULT_AUTH_TOKEN) -> MaskingClient:
    return MaskingClient(DEFAULT_AUTH_ID, token, base_url=emulator.base_url, options=FAST)


async def test_create_get_update_list_expire(masking_emulator: Emulator) -> None:
    """The five calls round-trip through the emulator and read back as typed models."""
    async with client(masking_emulator) as c:
        trace = CallTrace()
        made = await c.create_session(CreateSessionRequest(**PAIR, record=True), trace=trace)
        assert made.first_party == PAIR["first_party"]
        assert made.virtual_number.startswith("+")
        assert made.status == "active"
        assert made.record is True
        assert trace.attempts == 1
        assert trace.last_status == 201
        got = await c.get_session(made.session_uuid)
        assert got.session_uuid == made.session_uuid
        assert got.created_time is not None
        updated = await c.update_session(made.session_uuid, UpdateSessionRequest(ring_timeout=45))
        assert updated.ring_timeout == 45
        page = await c.list_sessions({"first_party": PAIR["first_party"]})
        assert [s.session_uuid for s in page.objects] == [made.session_uuid]
        assert page.meta.total_count == 1
        assert page.objects[0].resource_uri
        await c.expire_session(made.session_uuid)
        await c.expire_session(made.session_uuid)  # repeating an expire is harmless
        assert (await c.get_session(made.session_uuid)).status == "expired"


async def test_mapping_requests_are_accepted(masking_emulator: Emulator) -> None:
    """Plain dicts of wire parameters work as well as request objects."""
    async with client(masking_emulator) as c:
        made = await c.create_session({**PAIR, "session_expiry": 600})
        assert made.duration == 600


async def test_error_mapping(masking_emulator: Emulator) -> None:
    """404, 400 and 401 from the server become NotFound, InvalidRequest and Authentication."""
    async with client(masking_emulator) as c:
        with pytest.raises(NotFoundError) as missing:
            await c.get_session("00000000-0000-4000-8000-000000000000")
        assert missing.value.status == 404
        assert missing.value.api_id
        made = await c.create_session(PAIR)
        await c.expire_session(made.session_uuid)
        with pytest.raises(InvalidRequestError, match="expired") as refused:
            await c.update_session(made.session_uuid, {"record": True})
        assert refused.value.status == 400
    async with client(masking_emulator, token="wrong-token") as bad:
        with pytest.raises(AuthenticationError) as denied:
            await bad.list_sessions()
        assert denied.value.status == 401


async def test_validation_happens_before_sending(masking_emulator: Emulator) -> None:
    """A request that breaks a rule is refused locally, naming field and rule; nothing is sent."""
    masking_emulator.request_log.clear()
    async with client(masking_emulator) as c:
        with pytest.raises(RequestValidationError) as refused:
            await c.create_session({**PAIR, "second_party": PAIR["first_party"], "pin_retry": 9})
        assert {v.field for v in refused.value.violations} == {"second_party", "pin_retry"}
        with pytest.raises(RequestValidationError, match="geomatch: cannot be updated"):
            await c.update_session("x", {"geomatch": False})
        with pytest.raises(RequestValidationError, match="limit"):
            await c.list_sessions(limit=50)
    assert len(masking_emulator.request_log) == 0


async def test_configuration_errors(
    masking_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials, or a closed client, is a clear ConfigurationError; env vars are read."""
    monkeypatch.delenv("PLIVO_AUTH_ID", raising=False)
    monkeypatch.delenv("PLIVO_AUTH_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="PLIVO_AUTH_ID"):
        MaskingClient()
    monkeypatch.setenv("PLIVO_AUTH_ID", DEFAULT_AUTH_ID)
    monkeypatch.setenv("PLIVO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN)
    monkeypatch.setenv("MASKING_ASYNC_BASE_URL", masking_emulator.base_url)
    c = MaskingClient.from_env()
    async with c:
        assert (await c.list_sessions()).meta.total_count == 0
    with pytest.raises(ConfigurationError, match="closed"):
        await c.list_sessions()


async def test_secrets_never_leak(
    masking_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The token is in no repr, log line or error message, even on failures and retries."""
    secret = "s3cret-token-value-123"
    caplog.set_level(logging.DEBUG, logger="masking_async")
    async with MaskingClient(
        DEFAULT_AUTH_ID, secret, base_url=masking_emulator.base_url, options=FAST
    ) as c:
        with pytest.raises(AuthenticationError) as denied:
            await c.create_session(PAIR)
        texts = [repr(c), str(denied.value), repr(denied.value), caplog.text]
    assert all(secret not in text for text in texts)
    assert "4567" in caplog.text or "Session" in caplog.text  # something was logged


async def test_numbers_are_masked_in_logs(
    masking_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """With masking on (the default), log lines show only the last four digits of a number."""
    caplog.set_level(logging.DEBUG, logger="masking_async")
    async with client(masking_emulator) as c:
        await c.list_sessions({"first_party": PAIR["first_party"]})
    assert "***2345" in caplog.text
    assert "4155552345" not in caplog.text
