"""One request to a running emulator's control plane (``/emulator/...``), for the commands that
drive it from a shell: ``emulator-ctl``, ``emulator call`` and ``emulator phone``.

Blocking ``urllib`` on purpose: each command sends one or a few requests and exits. Proxies from
the environment are ignored: the emulator is local, and a proxy would only stand in its way.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import urllib.error
import urllib.request
from typing import Any, Final

from masking_async.client import BASE_URL_ENV, shown_url, url_fault

__all__ = ["DEFAULT_EMULATOR", "ControlRefused", "add_emulator_url", "control_call", "http_url"]

#: Where the control-plane commands find the emulator unless told (its default port).
DEFAULT_EMULATOR: Final = "http://127.0.0.1:8180"

_TIMEOUT: Final = 30.0
_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ControlRefused(Exception):
    """The emulator answered an error (a bad rule, an unknown account, a wrong token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def http_url(text: str) -> str:
    """``text`` if it is an ``http://`` or ``https://`` URL with a host, else ValueError.

    The client's own check of a server root (:func:`url_fault`), plain http allowed anywhere:
    a control plane carries no account credentials. Checked before anything is sent (urllib
    would try an ``ftp://`` root for many seconds); a user name or password is never shown.
    """
    fault = url_fault(text, plain_http_anywhere=True)
    if fault is not None:
        raise ValueError(f"{shown_url(text)}: {fault}")
    return text


def _http_url_option(text: str) -> str:
    try:
        return http_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_emulator_url(
    parser: argparse.ArgumentParser, *, after_action: bool = False, what: str = ""
) -> None:
    """``--emulator-url`` (``--url`` is its older spelling), the one name every command that
    drives a running emulator uses. Given to a command and to each of its actions
    (``after_action``: no default there, so a value given before the action stands), it is
    accepted before or after the action alike."""
    default = os.environ.get(BASE_URL_ENV) or DEFAULT_EMULATOR
    parser.add_argument(
        "--emulator-url",
        "--url",
        dest="emulator_url",
        type=_http_url_option,
        default=argparse.SUPPRESS if after_action else default,
        metavar="URL",
        help=f"the running emulator's root{what} (default: ${BASE_URL_ENV} or {DEFAULT_EMULATOR})",
    )


def control_call(root: str, method: str, path: str, body: Any, token: str | None) -> Any:
    """Send ``body`` (JSON, or nothing) to ``root + path`` and return the JSON answer.

    Raises :class:`ControlRefused` with the envelope's ``error`` for an answer >= 400, and
    :class:`urllib.error.URLError` (an :class:`OSError`) for a root that cannot be reached or is
    not an http URL at all.
    """
    try:
        http_url(root)
    except ValueError as exc:
        raise urllib.error.URLError(str(exc)) from None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    try:
        request = urllib.request.Request(
            root.rstrip("/") + path, data=data, method=method, headers=headers
        )
        with _DIRECT.open(request, timeout=_TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            message = text[:200] or exc.reason
        raise ControlRefused(exc.code, str(message)) from None
    except (ValueError, http.client.HTTPException) as exc:  # no scheme, a port "abc", ...
        raise urllib.error.URLError(str(exc) or type(exc).__name__) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise urllib.error.URLError(f"{root} answered something that is not JSON") from None
