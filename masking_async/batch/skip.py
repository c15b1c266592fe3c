"""``create --skip-active``: rows whose pair already has an active session are not sent.

One parallel listing of the account's active sessions comes first; a create row whose pair (first
and second party, in order) has one ends ``skipped``, its result naming the pair's newest active
session. Only rows never sent are skipped: a row an earlier run may have applied (``sending``,
``unknown``) is resolved as usual, and a skipped row stays ``pending`` in the journal, so running
the command again looks at the server again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

import attrs

from masking_async.batch.intake import Item
from masking_async.batch.journal import JournalEntry
from masking_async.batch.options import SessionAPI
from masking_async.models import Session

__all__ = ["SKIPPED", "active_by_pair", "skipping"]

#: The outcome of a row not sent because its pair has an active session.
SKIPPED: Final = "skipped"
#: The reason its result gives.
REASON: Final = "the pair already has an active session"
_EPOCH: Final = datetime.fromtimestamp(0, timezone.utc)

Pair = tuple[str, str | None]


def _pair(params: Mapping[str, Any]) -> Pair:
    return (params["first_party"], params.get("second_party") or None)


async def active_by_pair(client: SessionAPI) -> dict[Pair, Session]:
    """The newest active session of every pair, from one parallel listing."""
    newest: dict[Pair, Session] = {}
    async for session in client.iter_sessions({"status": "active"}, concurrency=8):
        if session.status == "expired" or not session.first_party:
            continue
        pair = (session.first_party, session.second_party or None)
        known = newest.get(pair)
        if known is None or (session.created_time or _EPOCH) > (known.created_time or _EPOCH):
            newest[pair] = session
    return newest


async def skipping(
    items: AsyncIterator[Item],
    active: Mapping[Pair, Session],
    finish: Callable[[Item, JournalEntry], None],
) -> AsyncIterator[Item]:
    """``items``, less the never-sent creates whose pair is in ``active`` (given to ``finish``
    with the pair's session)."""
    async for item in items:
        task, entry = item.task, item.entry
        found = None
        if task.op == "create" and task.valid and item.problem is None:
            found = active.get(_pair(task.params)) if entry.state == "pending" else None
        if found is None:
            yield item
            continue
        finish(
            item,
            attrs.evolve(
                entry, session_uuid=found.session_uuid, virtual_number=found.virtual_number
            ),
        )
