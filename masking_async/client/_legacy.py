"""The first version of the API as the client sends it: create and expire at ``.../Session/``.

Its sessions are the current API's sessions, so only the door differs: the create's checks and
defaults are :func:`masking_async.rules.check_legacy_create`, and a lost create is concluded like
the current one (``_adoption``: looked up through the current list, matched on the legacy
parameters with their defaults filled in, adopted, never sent twice). Its answer carries no
session, hence :class:`~masking_async.models.LegacySession`.
"""

from __future__ import annotations

from masking_async import spec
from masking_async.models import LegacySession, Session

__all__ = ["legacy_answer", "legacy_root"]


def legacy_root(base_url: str, auth_id: str) -> str:
    """The legacy collection (``POST`` creates, ``DELETE {uuid}/`` expires), as in the Go SDK."""
    return base_url + spec.LEGACY_COLLECTION.format(auth_id=auth_id)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def legacy_answer(session: Session) -> LegacySession:
    """The legacy answer from what the client read: the short answer (its ``api_id`` and
    ``message`` are kept in ``extra``), or an adopted session, which has neither."""
    number = session.virtual_number
    if number is not None and number.isdigit():
        number = "+" + number  # E.164, as the overview says it is
    return LegacySession(
        session_uuid=session.session_uuid,
        virtual_number=number,
        message=_text(session.extra.get("message")),
        api_id=_text(session.extra.get("api_id")),
    )
