"""Did an unanswered create make a session? One strict answer, shared by the client and the batch.

The API has no idempotency keys, so after a lost answer the only way to avoid a second session
is to look for the first. A lookup is trusted only when it is *conclusive*:

- it runs no earlier than ``sent_at + timeout + settle``: a server still working on the request
  when the client gave up has had the client's own timeout, plus ``settle``, to finish it;
- a candidate must match every parameter the create sent that a session echoes (parties,
  duration, call time limit, record, callback URLs and methods, plays, PIN settings, ...), in any
  status (an expired session was still made by us), created no earlier than the send minus a
  clock-skew margin, and not already claimed by another row or returned to this client.

Exactly one candidate is adopted; none means "not applied, safe to send again"; several is
ambiguous and is never guessed. The one case no client can close: a server that applies a create
more than ``timeout + settle`` after it was sent, after a lookup found nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import anyio
import attrs

from masking_async import rules, spec
from masking_async.models import Session

__all__ = [
    "Lookup",
    "create_lane",
    "lookup_filters",
    "matches",
    "pick",
    "same_value",
    "settle_until",
]

#: How much earlier than our send the server's clock may stamp the session it made.
CLOCK_SKEW: Final = timedelta(seconds=120)
_CASELESS: Final = frozenset({"callback_method", "recording_callback_method", "record_file_format"})


@attrs.frozen
class Lookup:
    """What a conclusive lookup found: one session, none, or several (ambiguous)."""

    session: Session | None = None
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def same_value(name: str, sent: Any, echoed: Any) -> bool:
    """Is ``echoed`` the value a session shows for parameter ``name`` sent as ``sent``?"""
    if name in ("first_party", "second_party"):
        try:
            return rules.normalize_party(sent) == rules.normalize_party(echoed)
        except ValueError:
            return False
    if name in _CASELESS:
        return str(sent).upper() == str(echoed).upper()
    return bool(sent == echoed)


def matches(params: Mapping[str, Any], session: Session) -> bool:
    """Does ``session`` carry every value of ``params`` that a session echoes?

    The parties are compared both ways: a single-party create (no ``second_party``) never made a
    session that has a second party.
    """
    if params.get("second_party") is None and session.second_party:
        return False
    for name, sent in params.items():
        param = spec.PARAMS.get(name)
        field = name if param is None else param.echoed_as
        if field is None or field not in spec.SESSION_FIELDS:
            continue
        echoed = getattr(session, field)
        if echoed is None:
            continue  # this server does not echo it: nothing to compare
        if field == "duration" and session.status == "expired" and echoed <= sent:
            continue  # expired early (DELETE) shortens the duration; never lengthens it
        if not same_value(name, sent, echoed):
            return False
    return True


async def settle_until(wall: float, mono: float | None = None) -> None:
    """Sleep until epoch second ``wall`` and, when given, monotonic second ``mono``.

    A conclusive moment known in this process is kept on the monotonic clock, which a step of
    the wall clock (an NTP correction) cannot bring forward; one read from a journal written by
    another process only exists on the wall clock.
    """
    wait = wall - time.time()
    if mono is not None:
        wait = max(wait, mono - time.monotonic())
    if wait > 0:
        await anyio.sleep(wait)


def lookup_filters(params: Mapping[str, Any], sent_at: float) -> dict[str, Any]:
    """List filters that narrow the search: the parties, and created no earlier than the send."""
    since = datetime.fromtimestamp(sent_at, timezone.utc) - CLOCK_SKEW
    filters: dict[str, Any] = {"first_party": params["first_party"], "created_time__gte": since}
    if params.get("second_party") is not None:
        filters["second_party"] = params["second_party"]
    return filters


async def pick(
    sessions: AsyncIterator[Session],
    params: Mapping[str, Any],
    *,
    claimed: Callable[[str], bool],
) -> Lookup:
    """The matching, unclaimed sessions among ``sessions``: one, none or several."""
    found: list[Session] = []
    async for session in sessions:
        if matches(params, session) and not claimed(session.session_uuid):
            found.append(session)
    if len(found) == 1:
        return Lookup(found[0], (found[0].session_uuid,))
    return Lookup(None, tuple(s.session_uuid for s in found))


def create_lane(params: Mapping[str, Any]) -> str:
    """Creates that one lookup could confuse share a lane, and a lane runs one create at a time.

    That is every create of the same parties: a candidate is matched on the parameters its own
    create sent, so a create that sent fewer (no ``record``, say) would also match the session
    of one that sent more.
    """
    parties = [rules.normalize_party(params["first_party"])]
    if params.get("second_party") is not None:
        parties.append(rules.normalize_party(params["second_party"]))
    return "create:" + ":".join(parties)
