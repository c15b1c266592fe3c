"""The server root is checked where the client is built, before a request can carry credentials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from masking_async import ConfigurationError, MaskingClient
from masking_async.client._options import check_base_url
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN

REFUSED = [
    "http://10.255.255.1:9",  # plain http off the machine: never contacted, refused before
    "http://example.com",
    "ftp://127.0.0.1:18990",
    "http://[::1",
    "127.0.0.1:18990",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:0",
    "http://127.0.0.1:18990/ x",
    "http://127.0.0.1:18990?a=b",
    "http://127.0.0.1:18990/#x",
    "http:///v1",
    "https://bad..host",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_bad_root_is_refused_when_the_client_is_built(url: str) -> None:
    """Each bad root raises ConfigurationError naming base_url, from the constructor alone."""
    with pytest.raises(ConfigurationError, match=r"^base_url "):
        MaskingClient(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=url)


def test_plain_http_off_loopback_names_the_rule() -> None:
    """http:// to a non-loopback host: the message says loopback only and to use https://."""
    with pytest.raises(ConfigurationError) as caught:
        check_base_url("http://10.255.255.1:9")
    assert "loopback" in str(caught.value)
    assert "https://" in str(caught.value)


@given(
    user=st.text("ABCDEFGHJK", min_size=1, max_size=8),
    secret=st.text("QRSTUVWXYZ0123456789", min_size=4, max_size=12),
)
def test_userinfo_is_refused_and_never_echoed(user: str, secret: str) -> None:
    """user:password@ in the root is refused, and neither part appears in the message."""
    with pytest.raises(ConfigurationError) as caught:
        check_base_url(f"http://{user}:{secret}@127.0.0.1:18990")
    assert secret not in str(caught.value)
    assert f"{user}:" not in str(caught.value)
    assert "user name or password" in str(caught.value)


def test_the_environment_variable_is_checked_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad $MASKING_ASYNC_BASE_URL is refused naming the variable; an empty one means unset."""
    monkeypatch.setenv("MASKING_ASYNC_BASE_URL", "http://10.255.255.1:9")
    with pytest.raises(ConfigurationError, match=r"^\$MASKING_ASYNC_BASE_URL "):
        MaskingClient(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN)
    monkeypatch.setenv("MASKING_ASYNC_BASE_URL", "")
    assert MaskingClient(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN).base_url == "https://api.plivo.com"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://127.0.0.1:8180/", "http://127.0.0.1:8180"),
        ("http://127.8.9.10:8180", "http://127.8.9.10:8180"),
        ("http://localhost:8180/prefix/", "http://localhost:8180/prefix"),
        ("http://[::1]:8180", "http://[::1]:8180"),
        ("https://api.example.com", "https://api.example.com"),
    ],
)
def test_good_roots_are_kept(url: str, kept: str) -> None:
    """https anywhere and http to loopback are accepted, without the trailing slash."""
    assert MaskingClient(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=url).base_url == kept


@given(st.ip_addresses(v=4), st.integers(1, 65535))
def test_plain_http_is_accepted_exactly_for_loopback(address: object, port: int) -> None:
    """http://ADDRESS:PORT is accepted if and only if the address is in 127.0.0.0/8."""
    url = f"http://{address}:{port}"
    loopback = str(address).startswith("127.")
    try:
        assert check_base_url(url) == url
        accepted = True
    except ConfigurationError:
        accepted = False
    assert accepted == loopback
