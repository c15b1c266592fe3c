"""Settle an unresolved create by hand: the one decision the engine leaves to a person.

A create whose answer was lost and whose lookup found several matching sessions stays
``unknown`` (see :mod:`.rowstate`): nothing on the wire tells which of them it made, and a guess
could hand a pair a session that belongs to someone else. Whoever knows names it (one of the
candidates the run reported) or says none is the row's, and the journal records that through the
row state machine; the next run (or ``masking-async report``) writes the row's files. Nothing is
sent to the API here.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from masking_async.batch.journal import Journal, JournalEntry, JournalError
from masking_async.batch.rowstate import advance
from masking_async.rules import check_session_uuid

__all__ = ["settle"]


def _settled(journal: Journal, key: str, session_uuid: str | None) -> JournalEntry:
    entry = journal.entry(key)
    if entry is None:
        raise JournalError(f"{journal.path}: no row {key!r}")
    if entry.state != "unknown" or len(entry.candidates) < 2 or entry.session_uuid is not None:
        # A row cut off in flight, one whose lookup failed, one the server named a session for:
        # the engine resolves those itself, and a person's guess could only make a duplicate.
        raise JournalError(
            f"row {key} is {entry.state} with no ambiguous lookup to settle:"
            " run the job again with its journal"
        )
    candidates = entry.candidates
    entry = attrs.evolve(entry, candidates=(), error=None, status=None)
    if session_uuid is None:  # none of the candidates is this row's: send it again
        return attrs.evolve(entry, state=advance(entry.state, "absent"))
    if check_session_uuid(session_uuid):
        raise JournalError(f"--session {session_uuid!r}: not a session id (a UUID)")
    chosen = next((c for c in candidates if c.lower() == session_uuid.lower()), None)
    if chosen is None:
        listed = ", ".join(candidates)
        raise JournalError(f"--session {session_uuid}: not a candidate of row {key} ({listed})")
    if journal.claimed_elsewhere(chosen, key):
        raise JournalError(f"--session {chosen}: another row of the journal has it")
    return attrs.evolve(
        entry,
        state=advance(entry.state, "adopted"),
        session_uuid=chosen,
        virtual_number=None,  # not known here: nothing is asked of the server
        adopted=True,
    )


async def settle(journal_path: Path, key: str, session_uuid: str | None) -> JournalEntry:
    """Record that row ``key``'s create made ``session_uuid`` (``None``: it made none).

    Only a row whose lookup found several candidates can be settled, and only with one of them.
    Raises :class:`JournalError` (one line naming the row) otherwise, or when the session is
    another row's; :class:`~.journal.JournalLocked` while a run holds the journal.
    """
    journal = Journal.open(journal_path, create=False)
    try:
        entry = _settled(journal, key, session_uuid)
    except BaseException:
        journal.close()
        raise
    try:
        async with journal.writing():
            await journal.commit(entry)
    finally:
        journal.close()
    return entry
