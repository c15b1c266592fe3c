"""Plivo's V3 callback signature, computed and verified exactly as the official SDKs do.

Hand-written because no maintained library implements it; the behaviour follows
``plivo/utils/signature_v3.py`` of plivo-python, which is the reference for what a sender signs:

1. The URL is cut to ``scheme://host/path`` (its query, ``;params`` and fragment dropped). Its
   query is parsed (``+`` and ``%xx`` decoded as UTF-8, blank values kept) into a map of lists.
   (The reference parses the query as ASCII bytes and fails on a ``%xx`` above 127; for ASCII
   the two agree, and for the rest UTF-8 gives what the sender signed from the decoded values.)
2. GET: the query map, merged over the sent ``params`` (the URL wins on a shared key), is written
   ``k=v`` sorted by key, list values one ``k=v`` each sorted by value, joined by ``&``, and
   appended as ``?...`` when not empty. Nothing is percent-encoded again.
3. POST with parameters: the URL part is written as for GET but always followed by ``?`` (and by
   ``.`` after a non-empty query); then every parameter as ``kv``, sorted by key, list values
   one ``kv`` each sorted by value, a nested mapping as ``k`` followed by its own such string.
   POST without parameters signs the URL part as for GET.
4. The signature is ``base64(HMAC-SHA256(auth_token, "<that string>.<nonce>"))``, UTF-8 throughout.

The ``X-Plivo-Signature-V3`` header may carry several signatures separated by commas; one match
is enough. Unlike the SDK, the comparison here is constant-time and a nonce can be refused when
it was seen before (:class:`NonceCache`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qs, urlparse, urlunparse

import attrs

__all__ = [
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_MA_HEADER",
    "NonceCache",
    "compute_signature",
    "signature_base",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Plivo-Signature-V3"
SIGNATURE_MA_HEADER: Final = "X-Plivo-Signature-Ma-V3"
NONCE_HEADER: Final = "X-Plivo-Signature-V3-Nonce"

Params = Mapping[str, Any]


def _text(value: Any) -> Any:
    """A value as the reference writes it: bytes byte-for-byte, numbers and booleans by str()."""
    if isinstance(value, bytes):
        return "".join(map(chr, value))
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_text(item) for item in value]
    return value


def _query_string(params: Params) -> str:
    pairs: list[str] = []
    for key in sorted(params):
        value = _text(params[key])
        if isinstance(value, list):
            pairs.append("&".join(f"{_text(key)}={item}" for item in sorted(value)))
        else:
            pairs.append(f"{_text(key)}={value}")
    return "&".join(pairs)


def _params_string(params: Params) -> str:
    parts: list[str] = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, Mapping):
            parts.append(f"{_text(key)}{_params_string(value)}")
            continue
        value = _text(value)
        if isinstance(value, list):
            parts.append("".join(f"{_text(key)}{item}" for item in sorted(value)))
        else:
            parts.append(f"{_text(key)}{value}")
    return "".join(parts)


def _url_part(url: str, params: Params, *, trailing: bool) -> str:
    """The URL without its query, then the sorted query (with ``params`` merged in for GET)."""
    parts = urlparse(url)
    base = urlunparse((parts.scheme, parts.netloc, parts.path, "", "", ""))
    merged: dict[str, Any] = dict(params)
    merged.update(parse_qs(parts.query, keep_blank_values=True))
    query = _query_string(merged)
    if query or trailing:
        base += "?" + query
    if query and trailing:
        base += "."
    return base


def signature_base(method: str, url: str, params: Params | None = None) -> str:
    """The string that is signed (before ``.<nonce>``), for ``GET`` or ``POST``."""
    params = params or {}
    if method.upper() == "GET":
        return _url_part(url, params, trailing=False)
    if method.upper() != "POST":
        raise ValueError(f"V3 signatures cover GET and POST callbacks, not {method!r}")
    if not params:
        return _url_part(url, {}, trailing=False)
    return _url_part(url, {}, trailing=True) + _params_string(params)


def compute_signature(
    method: str, url: str, params: Params | None, nonce: str, auth_token: str
) -> str:
    """The ``X-Plivo-Signature-V3`` value a sender puts on this request."""
    return _sign(_message(method, url, params, nonce), auth_token)


def _message(method: str, url: str, params: Params | None, nonce: str) -> bytes:
    """What is signed: built once per request, then signed with each token."""
    return f"{signature_base(method, url, params)}.{nonce}".encode()


def _sign(message: bytes, auth_token: str) -> str:
    digest = hmac.new(auth_token.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@attrs.define
class NonceCache:
    """Nonces seen in the last ``ttl`` seconds (at most ``max_size``), to refuse replays.

    A nonce is remembered only once its signature verified, so forged requests cannot fill it.
    """

    ttl: float = 300.0
    max_size: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _seen: OrderedDict[str, float] = attrs.field(factory=OrderedDict, init=False)

    def _prune(self, now: float) -> None:
        while self._seen and (
            len(self._seen) > self.max_size or next(iter(self._seen.values())) <= now - self.ttl
        ):
            self._seen.popitem(last=False)

    def seen(self, nonce: str) -> bool:
        self._prune(self.clock())
        return nonce in self._seen

    def add(self, nonce: str) -> None:
        now = self.clock()
        self._seen[nonce] = now
        self._seen.move_to_end(nonce)
        self._prune(now)

    def forget(self, nonce: str) -> None:
        """Let this nonce in again (its request was not processed, so a resend is no replay)."""
        self._seen.pop(nonce, None)

    def __len__(self) -> int:
        return len(self._seen)


def verify_signature(
    method: str,
    url: str,
    params: Params | None,
    nonce: str,
    signature: str,
    auth_token: str | Iterable[str],
    *,
    nonces: NonceCache | None = None,
) -> bool:
    """Whether ``signature`` (one or several, comma-separated) signs this request.

    ``auth_token`` may be several tokens (an account's and its subaccounts'); any one may match.
    With ``nonces``, a nonce already seen is refused and a verified one is remembered.
    """
    if not nonce or not signature:
        return False
    if nonces is not None and nonces.seen(nonce):
        return False
    tokens = [auth_token] if isinstance(auth_token, str) else list(auth_token)
    offered = [part.strip().encode() for part in signature.split(",") if part.strip()]
    valid = False
    message = _message(method, url, params, nonce)
    for token in tokens:
        expected = _sign(message, token).encode()
        for candidate in offered:
            # every pair is compared, so timing does not tell which token or position matched
            valid |= hmac.compare_digest(expected, candidate)
    if valid and nonces is not None:
        nonces.add(nonce)
    return valid
