"""A row's life, as data: the states, the events that move a row, and nothing else.

The journal stores a row's state; the engine moves it only through :func:`advance`, so a move
that is not in this table is a bug that raises instead of silently losing or duplicating a row.

::

    state      event          next       why
    ---------  -------------  ---------  ----------------------------------------------------------
    pending    send           sending    committed to disk BEFORE the request leaves
    sending    applied        ok         a 2xx answer (or a 2xx whose session we re-read)
    sending    refused        failed     a definitive 4xx: the server did not apply it, and will not
    sending    not_applied    pending    429, 401/403 or no connection: surely not applied
    sending    lost           unknown    timeout, lost link, 5xx, unreadable 2xx: maybe applied
    unknown    adopted        ok         a conclusive lookup found exactly one matching session
    unknown    absent         pending    a conclusive lookup found none, late enough to be sure
    unknown    lost           unknown    the lookup failed, or found several sessions (ambiguous)
    failed     retry          pending    only when the user asks (``--retry-failed``)

``masking-async resolve`` takes ``adopted`` or ``absent`` as a person's decision, and only for an
``unknown`` create whose lookup found several candidates (see :mod:`.resolve`).

``ok`` and ``failed`` are final. Nothing leaves ``unknown`` but a conclusive lookup (a create) or a
re-send (an update or expire, which are safe to repeat: ``absent`` is taken once the lost request
can no longer land, so it never lands after the next row on that session). A row found
``sending`` when a run starts was cut off by a crash: it is read as ``unknown``, and looked up no
sooner than ``timeout + settle`` after the run began, since its request may have left at any
moment before the crash. A row still ``unknown`` when a run ends is reported as ``unresolved``
(the rows behind it in its lane wait); the next run resolves it first.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["FINAL", "TRANSITIONS", "Event", "IllegalTransition", "State", "advance"]

State = Literal["pending", "sending", "ok", "failed", "unknown"]
Event = Literal["send", "applied", "refused", "not_applied", "lost", "adopted", "absent", "retry"]

TRANSITIONS: Final[dict[tuple[State, Event], State]] = {
    ("pending", "send"): "sending",
    ("sending", "applied"): "ok",
    ("sending", "refused"): "failed",
    ("sending", "not_applied"): "pending",
    ("sending", "lost"): "unknown",
    ("unknown", "adopted"): "ok",
    ("unknown", "absent"): "pending",
    ("unknown", "lost"): "unknown",
    ("failed", "retry"): "pending",
}
FINAL: Final = frozenset({"ok", "failed"})


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the engine, never a user's mistake."""


def advance(state: State, event: Event) -> State:
    """The state after ``event``; raises :class:`IllegalTransition` for any move not listed."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition(f"a row cannot go from {state!r} on {event!r}") from None
