"""Which column is which: a file's own headers matched to the API's names, the rest carried.

A spreadsheet names its columns as people do (``First Party``, ``Customer Phone``) and keeps
columns of its own (``order_id``). Headers match the API's names whatever their case and spacing;
``--map 'Customer Phone=first_party'`` names the others. A column that is no parameter at all is
carried through untouched to the results and the row files, so results join back by the user's
own ids; one that looks like a misspelt parameter (``sesion_expiry``) is refused with the name it
probably meant, since carrying it would silently drop a setting. Problems are found once for the
whole file, from its header, never once per row.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from masking_async import rules
from masking_async.batch.results import RESULT_FIELDS
from masking_async.batch.sources import CONTROL_COLUMNS
from masking_async.errors import ColumnError
from masking_async.models import Session
from masking_async.rules import Violation

__all__ = ["DEFAULT_REGION_COLUMN", "OWN", "RESERVED", "ColumnError", "Columns", "parse_map"]

#: The column naming a row's region, for numbers written without a country code. Never sent.
DEFAULT_REGION_COLUMN: Final = "default_region"
#: Every name a column of a create file may mean: parameters and control columns.
_CREATE_NAMES: Final = frozenset({*rules.CREATE_FIELDS, *CONTROL_COLUMNS, DEFAULT_REGION_COLUMN})
#: Every name a column may mean in the other commands: session attributes too, as ``list``
#: writes them, since its file is given back to ``update`` and ``expire``. A create file's
#: ``status`` or ``amount`` is the user's own (an order's), carried like any other.
_KNOWN: Final = _CREATE_NAMES | {a.name for a in attrs.fields(Session)}
#: The results' own fields: a carried column of one of these names is written as ``input_NAME``.
RESERVED: Final = frozenset(RESULT_FIELDS)
#: ``--map 'COLUMN=-'``: the column is the user's own (carried), however like a parameter it looks.
OWN: Final = "-"
#: How alike a header and a parameter must be to count as a misspelling (difflib's ratio).
_MISSPELT: Final = 0.85


def _key(name: str) -> str:
    """A header as a parameter name: ``First Party`` and ``first-party`` are ``first_party``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def parse_map(pairs: Iterable[str]) -> dict[str, str]:
    """``--map 'COLUMN=parameter'`` options, keyed by the column as :func:`_key` reads it (so
    the map matches the header whatever its case); a bad one is a ColumnError."""
    found: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        column, target = column.strip(), target.strip()
        target = target if target == OWN else _key(target)
        if not sep or not column or not target:
            raise ColumnError(
                f"--map {pair!r}: expected COLUMN=PARAMETER, e.g. 'Phone=first_party'"
            )
        if target not in _KNOWN and target != OWN:
            raise ColumnError(f"--map {pair!r}: {target} is not a parameter{_guess(target)}")
        if _key(column) in found:
            raise ColumnError(f"--map {column!r}: given twice; a column means one parameter")
        found[_key(column)] = target
    return found


def _names(op: str | None) -> frozenset[str]:
    """The names a column may mean for ``op``."""
    return _CREATE_NAMES if op == "create" else _KNOWN


def _close(name: str, known: frozenset[str] = _KNOWN) -> str | None:
    """The name ``name`` is probably a misspelling of, if any."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=_MISSPELT)
    return close[0] if close else None


def _guess(name: str, known: frozenset[str] = _KNOWN) -> str:
    close = _close(name, known)
    return f"; did you mean {close}?" if close else ""


@attrs.frozen
class Columns:
    """A file's columns: which API name each one means (``rename``) and which are carried.

    Built from the header with :meth:`plan`; :meth:`split` applies it to a row. A JSON record may
    bring a key the first one did not have: it is matched by the same rules as it comes.
    """

    rename: Mapping[str, str] = attrs.field(factory=dict)
    carried: tuple[str, ...] = ()
    maps: Mapping[str, str] = attrs.field(factory=dict)
    #: The names a column may mean (the operation's).
    known: frozenset[str] = _KNOWN
    #: The header's names that mean themselves.
    same: frozenset[str] = frozenset()
    #: Columns the operation needs and the header lacks. Said once, after the file is read
    #: (a malformed file is told by its line first), instead of once a row.
    missing: tuple[str, ...] = ()

    def missing_message(self) -> str:
        return "; ".join(
            f"no {name} column; name one {name}, or add --map 'COLUMN={name}'"
            for name in self.missing
        )

    @classmethod
    def plan(
        cls, names: Sequence[str], maps: Mapping[str, str], op: str | None, *, header: bool
    ) -> Columns:
        """Match ``names``; ColumnError naming every problem column. A header's missing
        columns are noted in ``missing`` (the first JSON record need not hold them all)."""
        problems: list[str] = []
        present = {_key(name) for name in names}
        for column, wanted in maps.items():
            if header and column not in present:
                problems.append(
                    f"--map: no column {column!r} to map to {wanted} (columns: {', '.join(names)})"
                )
        rename: dict[str, str] = {}
        same: set[str] = set()
        carried: list[str] = []
        meant: dict[str, str] = {}
        known = _names(op)
        for name in names:
            meaning = _meaning(name, maps, known)
            if meaning is None or meaning == OWN:
                close = _close(_key(name), known) if meaning is None else None
                if close:
                    problems.append(
                        f"column {name!r} is not a parameter; did you mean {close}? (rename it,"
                        f" or add --map '{name}={close}', or --map '{name}={OWN}' to keep it as"
                        " your own column)"
                    )
                carried.append(name)
                continue
            if meaning in meant:
                problems.append(
                    f"columns {meant[meaning]!r} and {name!r} both mean {meaning}; keep one"
                )
            meant[meaning] = name
            if meaning != name:
                rename[name] = meaning
            else:
                same.add(name)
        if problems:
            raise ColumnError("; ".join(problems))
        missing = _missing(meant, op) if header else ()
        return cls(
            rename=rename,
            carried=tuple(carried),
            maps=dict(maps),
            known=known,
            same=frozenset(same),
            missing=missing,
        )

    def split(
        self, fields: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], list[Violation]]:
        """The row under the API's names, its carried columns (as the results show them), and
        a violation for a key the header did not have that looks misspelt (JSON records)."""
        named: dict[str, Any] = {}
        carried: dict[str, Any] = {}
        problems: list[Violation] = []
        for name, value in fields.items():
            if name in self.same:  # the header's own names first: this runs for every cell
                named[name] = value
            elif name in self.rename:
                named[self.rename[name]] = value
            elif name in self.carried:
                carried[f"input_{name}" if name in RESERVED else name] = value
            else:  # a key the header (or the first JSON record) did not have
                target = _meaning(name, self.maps, self.known)
                if target is not None and target != OWN:
                    named[target] = value
                    continue
                if target is None and (guess := _guess(_key(name), self.known)):
                    problems.append(Violation(name, f"is not a parameter{guess}"))
                carried[f"input_{name}" if name in RESERVED else name] = value
        return named, carried, problems


def _meaning(name: str, maps: Mapping[str, str], known: frozenset[str]) -> str | None:
    """The API name a column means, or None for a column of the user's own."""
    if name in known and not maps:
        return name  # the common case, kept cheap: it runs for every cell
    key = _key(name)
    if key in maps:
        return maps[key]
    return name if name in known else key if key in known else None


def _missing(meant: Collection[str], op: str | None) -> tuple[str, ...]:
    """The columns ``op`` cannot run without, absent from the header. A file with an ``op``
    column is judged row by row (a row naming another operation is refused as itself)."""
    if "op" in meant:
        return ()
    if op == "create":
        needed = ["first_party"]
        if "create_session_with_single_party" not in meant:
            needed.append("second_party")
    elif op in ("update", "expire"):
        needed = ["session_uuid"]
    else:
        return ()
    return tuple(name for name in needed if name not in meant)
