"""A row's life, as data: where it can stand, what moves it, and what the engine does next.

Two tables. :data:`TRANSITIONS` is the journal's: the states a row is stored in and the events that
move it. :data:`STEPS` is the engine's: where a row stands and what its last action found out give
the event to record (if any), how long to wait, and the next action. :func:`step` reads it; the
driver (:mod:`.run`) only performs actions, waits, and reports what they found.

The journal's states (every move through :func:`advance`; one not listed raises instead of silently
losing or duplicating a row)::

    state      event          next       why
    ---------  -------------  ---------  ----------------------------------------------------------
    pending    send           sending    committed once the request holds a connection and a rate
                                         token, with that moment: it leaves right after the commit
    sending    applied        ok         a 2xx answer (or a 2xx whose session we re-read)
    sending    refused        failed     a definitive 4xx: the server did not apply it, and will not
    sending    not_applied    pending    no connection could be opened, 429, 401/403: surely not
    sending    lost           unknown    no answer, 5xx, unreadable 2xx, a crash: maybe applied
    unknown    adopted        ok         a lookup found exactly one matching session
    unknown    lost           unknown    the lookup failed, or found several sessions (ambiguous)
    unknown    absent         pending    a conclusive lookup found none (or, for an update or
                                         expire, the lost request can no longer land)
    failed     retry          pending    only when the user asks (``--retry-failed``)

``ok`` and ``failed`` are :data:`FINAL`. ``masking-async resolve`` takes ``adopted`` or ``absent``
as a person's decision for an ``unknown`` create whose lookup found several candidates
(:mod:`.resolve`).

The engine's steps. ``kind`` is ``create`` or ``change`` (an update or expire, safe to send again
once the lost one can no longer land, and never looked up)::

    kind    state    outcome      event        wait        action       why
    ------  -------  -----------  -----------  ----------  -----------  ---------------------------
    any     pending  start        -            -           send
    any     ok       start        -            -           ok           an earlier run concluded it
    any     failed   start        -            -           failed       (unless --retry-failed:)
    any     failed   retry        retry        -           send
    create  sending  start        lost         early       look         a crash cut it off
    create  unknown  start        -            early       look
    change  sending  start        lost         conclusive  resend
    change  unknown  start        -            conclusive  resend
    any     pending  waited       -            -           send         a backoff ended
    any     pending  not_sent     -            backoff     send         no connection or token
    any     sending  not_sent     not_applied  backoff     send         connection refused, 429s
    any     pending  called_off   -            -           unprocessed  a stop, before it left
    any     sending  called_off   not_applied  -           unprocessed  (its last try was a 429)
    any     sending  applied      applied      -           ok
    any     sending  refused      refused      -           failed
    any     sending  credentials  not_applied  -           halt         401/403: the run stops
    any     pending  credentials  -            -           halt
    create  sending  lost         lost         early       look         may still run at the server
    create  sending  finished     lost         conclusive  look         a 5xx: done at the server
    change  sending  lost         lost         conclusive  resend
    change  sending  finished     lost         backoff     resend
    create  unknown  found        adopted      -           ok
    create  unknown  none_yet     -            conclusive  look         looked early: look again
    create  unknown  none         absent       -           send         when it could no longer land
    create  unknown  several      lost         -           unresolved   only a person can say which
    create  unknown  look_failed  lost         backoff     look
    create  unknown  credentials  -            -           halt
    any     pending  stopped      -            -           unprocessed  Ctrl-C, a halt, the deadline
    any     unknown  stopped      -            -           unresolved   the next run resolves it

Waits hold nothing: no worker, no connection, no rate token (the driver parks the row on a
timer). ``early`` is ``settle`` after the request left: a session it made is there by then.
``conclusive`` is the row's ``lookup_at``: ``timeout + settle`` after it left (a lost answer: the
server may still be working on it), or ``settle`` after a 5xx (the server has finished); only
from then may "none found" be taken as "not applied". ``resend`` records ``absent``, then sends.
A halt stops the run, and the row then takes the ``stopped`` step. A row still ``unknown`` when a
run ends is ``unresolved``; the rows behind it in its lane wait for the run that resolves it.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "FINAL",
    "STEPS",
    "TRANSITIONS",
    "Action",
    "IllegalTransition",
    "Kind",
    "Outcome",
    "RowEvent",
    "State",
    "Step",
    "Wait",
    "advance",
    "step",
]

State = Literal["pending", "sending", "ok", "failed", "unknown"]
RowEvent = Literal[
    "send", "applied", "refused", "not_applied", "lost", "adopted", "absent", "retry"
]
Kind = Literal["create", "change"]
Outcome = Literal[
    "start",
    "retry",
    "waited",
    "not_sent",
    "called_off",
    "applied",
    "refused",
    "credentials",
    "lost",
    "finished",
    "found",
    "none_yet",
    "none",
    "several",
    "look_failed",
    "stopped",
]
Wait = Literal["", "early", "conclusive", "backoff"]
Action = Literal["send", "resend", "look", "ok", "failed", "unresolved", "unprocessed", "halt"]
#: What :func:`step` returns: the event to record first (None: none), the wait, the action.
Step = tuple[RowEvent | None, Wait, Action]

TRANSITIONS: Final[dict[tuple[State, RowEvent], State]] = {
    ("pending", "send"): "sending",
    ("sending", "applied"): "ok",
    ("sending", "refused"): "failed",
    ("sending", "not_applied"): "pending",
    ("sending", "lost"): "unknown",
    ("unknown", "adopted"): "ok",
    ("unknown", "lost"): "unknown",
    ("unknown", "absent"): "pending",
    ("failed", "retry"): "pending",
}
FINAL: Final[frozenset[State]] = frozenset({"ok", "failed"})

_ANY: Final[dict[tuple[State, Outcome], Step]] = {
    ("pending", "start"): (None, "", "send"),
    ("ok", "start"): (None, "", "ok"),
    ("failed", "start"): (None, "", "failed"),
    ("failed", "retry"): ("retry", "", "send"),
    ("pending", "waited"): (None, "", "send"),
    ("pending", "not_sent"): (None, "backoff", "send"),
    ("sending", "not_sent"): ("not_applied", "backoff", "send"),
    ("pending", "called_off"): (None, "", "unprocessed"),
    ("sending", "called_off"): ("not_applied", "", "unprocessed"),
    ("sending", "applied"): ("applied", "", "ok"),
    ("sending", "refused"): ("refused", "", "failed"),
    ("sending", "credentials"): ("not_applied", "", "halt"),
    ("pending", "credentials"): (None, "", "halt"),
    ("pending", "stopped"): (None, "", "unprocessed"),
    ("unknown", "stopped"): (None, "", "unresolved"),
}
STEPS: Final[dict[Kind, dict[tuple[State, Outcome], Step]]] = {
    "create": {
        **_ANY,
        ("sending", "start"): ("lost", "early", "look"),
        ("unknown", "start"): (None, "early", "look"),
        ("sending", "lost"): ("lost", "early", "look"),
        ("sending", "finished"): ("lost", "conclusive", "look"),
        ("unknown", "found"): ("adopted", "", "ok"),
        ("unknown", "none_yet"): (None, "conclusive", "look"),
        ("unknown", "none"): ("absent", "", "send"),
        ("unknown", "several"): ("lost", "", "unresolved"),
        ("unknown", "look_failed"): ("lost", "backoff", "look"),
        ("unknown", "credentials"): (None, "", "halt"),
    },
    "change": {
        **_ANY,
        ("sending", "start"): ("lost", "conclusive", "resend"),
        ("unknown", "start"): (None, "conclusive", "resend"),
        ("sending", "lost"): ("lost", "conclusive", "resend"),
        ("sending", "finished"): ("lost", "backoff", "resend"),
    },
}


class IllegalTransition(RuntimeError):
    """A move the tables do not allow: a bug in the engine, never a user's mistake."""


def advance(state: State, event: RowEvent) -> State:
    """The state after ``event``; raises :class:`IllegalTransition` for any move not listed."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition(f"a row cannot go from {state!r} on {event!r}") from None


def step(kind: Kind, state: State, outcome: Outcome) -> Step:
    """What to record, how long to wait and what to do, for a ``kind`` row in ``state`` after
    ``outcome``; raises :class:`IllegalTransition` for a pair the table does not list."""
    try:
        return STEPS[kind][state, outcome]
    except KeyError:
        raise IllegalTransition(f"a {kind} row in {state!r} has no step for {outcome!r}") from None
