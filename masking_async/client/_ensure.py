"""Get-or-create: the pair's active session that matches a request, or a new one.

"The pair" is the request's first and second party, in that order, as the API keeps them
(``A, B`` and ``B, A`` are two pairs); a single-party request's pair is its first party alone.
A session is reused only when it matches the request strictly, as a lost create's lookup does
(``_adoption.matches``): every parameter given that a session echoes must be equal.

Two callers must not both find nothing and both create, so the look and the create happen under
the pair's lane on one client and, when the client's limiter can lock across processes
(:class:`PairLocks`, as ``RedisLimiter`` does), under a short per-pair lock there too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from masking_async.client._adoption import matches
from masking_async.models import Session

__all__ = ["Ensured", "PairLocks", "active_filters", "newest_match"]

T = TypeVar("T")


@attrs.frozen
class Ensured:
    """What ``ensure_session`` returns: the session, and whether this call created it."""

    session: Session
    created: bool


@runtime_checkable
class PairLocks(Protocol):
    """A limiter that can also hold a lock shared by every process of the account."""

    async def run_locked(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` while holding the lock named ``key`` (kept alive however long it takes)."""
        ...


def active_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    """List filters for the pair's active sessions."""
    filters: dict[str, Any] = {"first_party": params["first_party"], "status": "active"}
    if params.get("second_party") is not None:
        filters["second_party"] = params["second_party"]
    return filters


def _same_pair(params: Mapping[str, Any], session: Session) -> bool:
    """Checked ``params`` hold normalised parties, as sessions do: compared as they are."""
    return (params["first_party"], params.get("second_party") or None) == (
        session.first_party,
        session.second_party or None,
    )


def _created(session: Session) -> float:
    return session.created_time.timestamp() if session.created_time else 0.0


async def newest_match(
    sessions: AsyncIterator[Session], params: Mapping[str, Any]
) -> Session | None:
    """The newest active session of the pair that matches ``params``, if any."""
    best: Session | None = None
    async for session in sessions:
        # Listed as active; one with a call going shows ``in-progress``, and is active too.
        if session.status == "expired" or not _same_pair(params, session):
            continue
        if not matches(params, session):
            continue
        if best is None or _created(session) > _created(best):
            best = session
    return best
