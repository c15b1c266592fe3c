"""One request to a running emulator's control plane (``/emulator/...``), for the commands that
drive it from a shell: ``emulator-ctl``, ``emulator call`` and ``emulator phone``.

Blocking ``urllib`` on purpose: each command sends one or a few requests and exits.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

__all__ = ["ControlRefused", "control_call"]

_TIMEOUT: Final = 30.0


class ControlRefused(Exception):
    """The emulator answered with an error: a bad rule, an unknown account, a wrong token."""


def control_call(root: str, method: str, path: str, body: Any, token: str | None) -> Any:
    """Send ``body`` (JSON, or nothing) to ``root + path`` and return the JSON answer.

    Raises :class:`ControlRefused` with the envelope's ``error`` for an answer >= 400; a root that
    cannot be reached raises :class:`urllib.error.URLError` (an :class:`OSError`).
    """
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        root.rstrip("/") + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            message = text[:200] or exc.reason
        raise ControlRefused(f"{method} {path}: {exc.code} {message}") from None
