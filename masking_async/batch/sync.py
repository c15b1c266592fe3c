"""``sync``'s plan: what to create, update and expire so the server's active sessions match a file.

The file holds the *desired* active sessions, one row per pair (first and second party, in
order, as the API keeps them) with the parameters wanted; a parameter left out (an empty cell)
means "any". Against the pair's newest active session, each wanted parameter is compared as a
lost create's lookup compares it (``same_value``); ``session_expiry`` is used only to create,
since an update restarts it from the moment of the update (an active session is by definition
not yet expired). A parameter an update can change drifts into an *update*; one it cannot
(the spec's list, and the create-only PIN settings) into a *replace*: expire, then create.

The plan is data, and its rows are a batch file (``op``, ``session_uuid`` and parameters), so
it is applied by the batch engine with every guarantee of ``run``, and can be read, kept and
run by hand (``masking-async run PLAN``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from masking_async import rules, spec
from masking_async.batch.rows import to_task
from masking_async.batch.sources import Format, read_rows
from masking_async.client import same_value
from masking_async.errors import SyncInputError
from masking_async.models import Session

__all__ = [
    "NARROWING",
    "Change",
    "Desired",
    "Pair",
    "Plan",
    "SyncInputError",
    "SyncOptions",
    "group_active",
    "make_plan",
    "pair_of",
    "read_desired",
    "within",
]

Pair = tuple[str, str | None]
Why = Literal["create", "update", "replace", "prune", "dedupe"]

#: Compared only when creating: an update restarts it from the moment of the update.
_CREATE_ONLY: Final = frozenset({"session_expiry"})
_PARTIES: Final = frozenset({"first_party", "second_party"})
#: How many invalid rows of the desired file are named before giving up.
_SHOWN: Final = 20


@attrs.frozen
class Desired:
    """One row of the desired file: its pair, the checked parameters wanted, where it came from."""

    pair: Pair
    params: Mapping[str, Any]
    line: int
    ref: str | None = None


@attrs.frozen(kw_only=True)
class SyncOptions:
    """What apply may do beyond creating and updating the file's pairs."""

    #: Expire the active sessions of pairs the file does not hold.
    prune: bool = False
    #: Replace (expire + create) a session whose drift an update cannot fix.
    replace: bool = False
    #: Expire all but the newest active session of a pair.
    dedupe: bool = False


@attrs.frozen
class Change:
    """One row of the plan: an operation, why it is there, and the fields that drifted."""

    op: Literal["create", "update", "expire"]
    why: Why
    pair: Pair
    params: Mapping[str, Any] = attrs.field(factory=dict)
    session_uuid: str | None = None
    ref: str | None = None
    #: ``(field, on the server, wanted)`` for updates and replaces.
    diffs: tuple[tuple[str, Any, Any], ...] = ()

    def row(self) -> dict[str, Any]:
        """The batch row that applies it."""
        row: dict[str, Any] = {"op": self.op, "ref": self.ref or _pair_text(self.pair)}
        if self.session_uuid is not None:
            row["session_uuid"] = self.session_uuid
        return {**row, **self.params}


@attrs.define
class Plan:
    """Every change, and what the plan found but leaves alone."""

    options: SyncOptions
    changes: list[Change] = attrs.field(factory=list)
    unchanged: int = 0
    #: Pairs with more than one active session, and their sessions beyond the newest.
    several: int = 0
    extra: int = 0
    #: Active sessions of pairs the file does not hold (expired only with ``prune``).
    unwanted: int = 0
    #: Sessions whose drift needs a replace that ``replace`` does not allow.
    held: list[Change] = attrs.field(factory=list)

    @property
    def has_changes(self) -> bool:
        """Would apply change anything, or is a needed replace only held back?"""
        return bool(self.changes or self.held)

    @property
    def expiring(self) -> int:
        return sum(change.op == "expire" for change in self.changes)

    def rows(self) -> list[dict[str, Any]]:
        """The plan as a batch file: expires first, then updates, then creates."""
        order = {"expire": 0, "update": 1, "create": 2}
        return [c.row() for c in sorted(self.changes, key=lambda c: order[c.op])]

    def describe(self) -> str:
        """``+ 100 to create, ~ 50 to update (record: false -> true), ...`` and what is held."""
        count = Counter(change.why for change in self.changes)
        parts = [f"+ {count['create']} to create"]
        parts.append(f"~ {count['update']} to update" + _diff_note(self.changes, "update"))
        if count["replace"] or self.held:
            replaced = count["replace"] // 2  # an expire and a create each
            note = _diff_note(self.changes + self.held, "replace")
            held = f", {len(self.held)} held (with --replace)" if self.held else ""
            parts.append(f"± {replaced} to replace{note}{held}")
        reasons = {f"--{why}": count[why] for why in ("prune", "dedupe") if count[why]}
        expires = sum(reasons.values())
        if len(reasons) == 1:
            parts.append(f"- {expires} to expire (with {next(iter(reasons))})")
        else:
            note = ", ".join(f"{n} with {option}" for option, n in reasons.items())
            parts.append(f"- {expires} to expire" + (f" ({note})" if note else ""))
        parts.append(f"{self.unchanged} unchanged")
        if self.several:
            pairs = "pair" if self.several == 1 else "pairs"
            parts.append(f"{self.several} {pairs} with several active sessions")
        lines = ["plan: " + ", ".join(parts)]
        if self.unwanted and not self.options.prune:
            lines.append(
                f"{self.unwanted} active sessions of pairs not in the file are kept"
                " (--prune expires them)"
            )
        if self.extra and not self.options.dedupe:
            lines.append(
                f"{self.extra} sessions beyond the newest of their pair are kept"
                " (--dedupe expires them)"
            )
        if self.held:
            lines.append(
                f"{len(self.held)} sessions differ in a parameter no update can change:"
                " --replace expires and creates them again"
            )
        return "\n".join(lines)


def _pair_text(pair: Pair) -> str:
    return pair[0] if pair[1] is None else f"{pair[0]} {pair[1]}"


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _diff_note(changes: Iterable[Change], why: Why) -> str:
    """The commonest drifts, ``(record: false -> true)``, counted when they differ."""
    drifts = Counter(
        f"{name}: {_shown(was)} -> {_shown(wanted)}"
        for change in changes
        if change.why == why and change.op != "expire"
        for name, was, wanted in change.diffs
    )
    if not drifts:
        return ""
    if len(drifts) == 1:
        return f" ({next(iter(drifts))})"
    shown = [f"{text} x{n}" for text, n in drifts.most_common(3)]
    more = f", {len(drifts) - 3} more" if len(drifts) > 3 else ""
    return f" ({', '.join(shown)}{more})"


def read_desired(path: Path, fmt: Format) -> list[Desired]:
    """Every row of the desired file, checked as a create; :class:`SyncInputError` names the
    invalid and repeated rows (the first 20), and nothing else happens."""
    desired: list[Desired] = []
    problems: list[str] = []
    seen: dict[Pair, int] = {}
    for row in read_rows(path, fmt):
        task = to_task(row, "create", text_cells=fmt == "csv")
        if task.violations:
            problems += [f"{path}: line {row.line}: {v}" for v in task.violations]
            continue
        pair = pair_of(task.params)
        if pair in seen:
            problems.append(
                f"{path}: line {row.line}: the pair {_pair_text(pair)} repeats line {seen[pair]};"
                " a pair has one desired session"
            )
            continue
        seen[pair] = row.line
        desired.append(Desired(pair, task.params, row.line, task.ref))
    if problems:
        more = len(problems) - _SHOWN
        shown = problems[:_SHOWN] + ([f"... and {more} more"] if more > 0 else [])
        raise SyncInputError("\n".join(shown) + "\nnothing was listed or sent")
    return desired


#: The ``--where`` filters a desired row can be judged by too. Narrowing the listing by any
#: other (a time, say) would hide a wanted pair's session, and the plan would create a second.
NARROWING: Final = ("first_party", "second_party", "subaccount")


def within(desired: Iterable[Desired], filters: Mapping[str, Any]) -> list[Desired]:
    """The rows the filters (names in :data:`NARROWING`, values checked) would list."""
    wanted = {name: filters[name] for name in NARROWING if name in filters}

    def inside(row: Desired) -> bool:
        for name, value in wanted.items():
            given = row.params.get(name)
            if given is None:
                return False
            if name in _PARTIES and rules.normalize_party(value) != given:
                return False
            if name not in _PARTIES and str(value) != str(given):
                return False
        return True

    return [row for row in desired if inside(row)]


def _drift(params: Mapping[str, Any], session: Session) -> list[tuple[str, Any, Any]]:
    """Each wanted parameter the session shows otherwise: ``(field, shown, wanted)``."""
    diffs = []
    for name, wanted in params.items():
        if name in _PARTIES or name in _CREATE_ONLY or name not in spec.SESSION_FIELDS:
            continue
        shown = getattr(session, name)
        if shown is None or not same_value(name, wanted, shown):
            diffs.append((name, shown, wanted))
    return diffs


def pair_of(params: Mapping[str, Any]) -> Pair:
    """The pair of checked create parameters: first and second party, in order."""
    return (params["first_party"], params.get("second_party") or None)


def group_active(active: Iterable[Session]) -> dict[Pair, list[Session]]:
    """The listed active sessions by pair, newest first.

    A session with a call going shows ``in-progress``: it was listed as active, and is.
    """
    by_pair: defaultdict[Pair, list[Session]] = defaultdict(list)
    for session in active:
        if session.status != "expired" and session.first_party:
            by_pair[(session.first_party, session.second_party or None)].append(session)
    for sessions in by_pair.values():
        sessions.sort(key=lambda s: s.created_time.timestamp() if s.created_time else 0.0)
        sessions.reverse()
    return dict(by_pair)


def make_plan(desired: Iterable[Desired], active: Iterable[Session], options: SyncOptions) -> Plan:
    """The changes that make ``active`` (the server's active sessions) match ``desired``."""
    plan = Plan(options)
    by_pair = group_active(active)
    for sessions in by_pair.values():
        if len(sessions) > 1:
            plan.several += 1
            plan.extra += len(sessions) - 1
    wanted_pairs = set()
    for row in desired:
        wanted_pairs.add(row.pair)
        sessions = by_pair.get(row.pair, [])
        if options.dedupe:
            plan.changes += [_expire(s, "dedupe", row.pair, row.ref) for s in sessions[1:]]
        if not sessions:
            plan.changes.append(Change("create", "create", row.pair, row.params, ref=row.ref))
            continue
        newest = sessions[0]
        diffs = _drift(row.params, newest)
        if not diffs:
            plan.unchanged += 1
        elif any(name not in rules.UPDATE_FIELDS for name, _, _ in diffs):
            fixed = (_expire(newest, "replace", row.pair, row.ref, tuple(diffs)),)
            made = Change(
                "create", "replace", row.pair, row.params, ref=row.ref, diffs=tuple(diffs)
            )
            if options.replace:
                plan.changes += [*fixed, made]
            else:
                plan.held.append(made)
        else:
            update = {name: wanted for name, _, wanted in diffs}
            plan.changes.append(
                Change(
                    "update", "update", row.pair, update, newest.session_uuid, row.ref, tuple(diffs)
                )
            )
    for pair, sessions in by_pair.items():
        if pair in wanted_pairs:
            continue
        plan.unwanted += len(sessions)
        if options.prune:
            plan.changes += [_expire(s, "prune", pair, None) for s in sessions]
        elif options.dedupe:
            plan.changes += [_expire(s, "dedupe", pair, None) for s in sessions[1:]]
    return plan


def _expire(
    session: Session,
    why: Why,
    pair: Pair,
    ref: str | None,
    diffs: tuple[tuple[str, Any, Any], ...] = (),
) -> Change:
    return Change("expire", why, pair, session_uuid=session.session_uuid, ref=ref, diffs=diffs)
