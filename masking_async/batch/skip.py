"""``create --skip-active``: rows whose pair already has an active session are not sent.

One parallel listing of the account's active sessions comes first; a create row whose pair (first
and second party, in order) has one ends ``skipped``, its result naming the pair's newest active
session. Only rows never sent are skipped: a row an earlier run may have applied (``sending``,
``unknown``) is resolved as usual, and a skipped row stays ``pending`` in the journal, so running
the command again looks at the server again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final

import attrs

from masking_async.batch.intake import Item
from masking_async.batch.journal import JournalEntry
from masking_async.batch.options import SessionAPI
from masking_async.batch.sync import Pair, group_active, pair_of
from masking_async.models import Session

__all__ = ["SKIPPED", "active_by_pair", "skipping"]

#: The outcome of a row not sent because its pair has an active session.
SKIPPED: Final = "skipped"
#: The reason its result gives.
REASON: Final = "the pair already has an active session"


async def active_by_pair(client: SessionAPI) -> dict[Pair, Session]:
    """The newest active session of every pair, from one parallel listing."""
    listed = [s async for s in client.iter_sessions({"status": "active"}, concurrency=8)]
    return {pair: sessions[0] for pair, sessions in group_active(listed).items()}


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
            found = active.get(pair_of(task.params)) if entry.state == "pending" else None
        if found is None:
            yield item
            continue
        finish(
            item,
            attrs.evolve(
                entry, session_uuid=found.session_uuid, virtual_number=found.virtual_number
            ),
        )
