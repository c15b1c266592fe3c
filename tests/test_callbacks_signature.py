"""V3 signatures: ours agree with the official plivo SDK both ways, for GET and POST, with and
without query strings, with empty and non-ASCII values; comparison, several signatures, nonces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from plivo.utils.signature_v3 import (
    construct_get_url,
    construct_post_url,
    get_signature_v3,
    validate_v3_signature,
)

from masking_async.callbacks import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    CallbackServer,
    NonceCache,
    compute_signature,
    verify_signature,
)

TOKEN = "MjA5ZGQ4NzYtOTQ5Yy00ZTM0LWE4YTUtYjQ2OTcwNDI4ZjJj"
NONCE = "05429567804466091622"
URLS = ["http://127.0.0.1:8190/hooks", "http://127.0.0.1:8190/hooks?tenant=7&a=b+c&empty="]
PARAMS = [
    {},
    {"EventName": "SessionTimeout", "SessionUUID": "u-1", "PinAuthenticationStatus": ""},
    {"From": "14155550100", "To": "", "Note": "Zoë — ünïcødé ✓", "Amount": "0.00500"},
]


def sdk_signature(method: str, url: str, params: dict[str, Any], nonce: str, token: str) -> str:
    """What the SDK's own signing helpers produce (the functions its validator calls)."""
    base = (
        construct_get_url(url, dict(params))
        if method == "GET"
        else construct_post_url(url, dict(params))
    )
    signed: bytes = get_signature_v3(token.encode(), base.decode(), nonce.encode())
    return signed.decode()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", PARAMS)
def test_ours_and_the_sdks_agree(method: str, url: str, params: dict[str, str]) -> None:
    """Signatures we make pass the SDK's validate_v3_signature and equal the SDK's own."""
    ours = compute_signature(method, url, params, NONCE, TOKEN)
    assert ours == sdk_signature(method, url, params, NONCE, TOKEN)
    assert validate_v3_signature(method, url, NONCE, TOKEN, ours, dict(params))
    assert not validate_v3_signature(method, url, NONCE, TOKEN + "x", ours, dict(params))


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    params=st.dictionaries(_TEXT.filter(bool), _TEXT | st.lists(_TEXT, max_size=3), max_size=6),
    query=st.dictionaries(
        st.from_regex(r"[a-z]{1,5}", fullmatch=True),
        st.from_regex(r"[a-z0-9]{0,5}", fullmatch=True),
    ),
    nonce=st.from_regex(r"[0-9]{1,20}", fullmatch=True),
)
def test_agreement_holds_for_any_parameters(
    method: str, params: dict[str, Any], query: dict[str, str], nonce: str
) -> None:
    """For any parameters (any Unicode, empty, repeated values) ours equals the SDK's, and
    verifies with our own verifier; a changed value never verifies."""
    url = "http://127.0.0.1:9/cb" + (f"?{urlencode(query)}" if query else "")
    ours = compute_signature(method, url, params, nonce, TOKEN)
    assert ours == sdk_signature(method, url, params, nonce, TOKEN)
    assert verify_signature(method, url, params, nonce, ours, TOKEN)
    if params:
        key = sorted(params)[0]
        changed = {**params, key: "changed!" if params[key] != "changed!" else "other"}
        assert not verify_signature(method, url, changed, nonce, ours, TOKEN)


def test_several_signatures_and_tokens() -> None:
    """A header may carry several comma-separated signatures; any matching token is enough."""
    good = compute_signature("POST", URLS[0], PARAMS[1], NONCE, TOKEN)
    assert verify_signature("POST", URLS[0], PARAMS[1], NONCE, f"bm90LWl0, {good}", TOKEN)
    assert verify_signature("POST", URLS[0], PARAMS[1], NONCE, good, ["other", TOKEN])
    assert not verify_signature("POST", URLS[0], PARAMS[1], NONCE, "bm90LWl0", TOKEN)
    assert not verify_signature("POST", URLS[0], PARAMS[1], "", good, TOKEN)
    assert not verify_signature("POST", URLS[0], PARAMS[1], NONCE, "", TOKEN)
    with pytest.raises(ValueError, match="GET and POST"):
        compute_signature("PUT", URLS[0], {}, NONCE, TOKEN)


def test_a_nonce_is_accepted_once() -> None:
    """With a NonceCache a verified nonce is refused the second time, until it ages out."""
    now = [0.0]
    nonces = NonceCache(ttl=60, clock=lambda: now[0])
    good = compute_signature("GET", URLS[0], {}, NONCE, TOKEN)
    assert not verify_signature("GET", URLS[0], {}, NONCE, "bad", TOKEN, nonces=nonces)
    assert verify_signature("GET", URLS[0], {}, NONCE, good, TOKEN, nonces=nonces)
    assert not verify_signature("GET", URLS[0], {}, NONCE, good, TOKEN, nonces=nonces)
    now[0] = 61
    assert verify_signature("GET", URLS[0], {}, NONCE, good, TOKEN, nonces=nonces)
    small = NonceCache(max_size=2, clock=lambda: 0.0)
    for nonce in "abc":
        small.add(nonce)
    assert len(small) == 2
    assert not small.seen("a")


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[CallbackServer]:
    async with CallbackServer(auth_token=TOKEN, path="/hooks", nonces=NonceCache()) as server:
        yield server


@pytest.mark.parametrize("query", ["", "tenant=7&empty="])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_our_receiver_accepts_what_the_sdk_signs(
    receiver: CallbackServer, method: str, query: str
) -> None:
    """A request signed by the SDK's helpers, with empty and non-ASCII values, is accepted by
    our receiver over HTTP; the same request with one value changed is refused."""
    params = {
        "EventName": "SessionPartiesHangup",
        "SessionUUID": "u-1",
        "SequenceNumber": "4",
        "PlivoHangupCause": "",
        "From": "14155550100",
        "Note": "Zoë ✓ 東京",
    }
    url = receiver.url + (f"?{query}" if query else "")
    signature = sdk_signature(method, url, params, NONCE, TOKEN)
    headers = {SIGNATURE_HEADER: signature, NONCE_HEADER: NONCE}
    async with aiohttp.ClientSession() as http:
        if method == "GET":
            request = http.get(url, params=params, headers=headers)
        else:
            request = http.post(url, data=params, headers=headers)
        async with request as answer:
            assert answer.status == 200, await answer.text()
        tampered = {**params, "SequenceNumber": "5"}
        fresh = {**headers, NONCE_HEADER: NONCE + "1"}
        fresh[SIGNATURE_HEADER] = sdk_signature(method, url, params, NONCE + "1", TOKEN)
        if method == "GET":
            request = http.get(url, params=tampered, headers=fresh)
        else:
            request = http.post(url, data=tampered, headers=fresh)
        async with request as answer:
            assert answer.status == 403
    (event,) = receiver.events
    assert (event.event_name, event.sequence_number, event.extra["Note"]) == (
        "SessionPartiesHangup",
        4,
        "Zoë ✓ 東京",
    )
