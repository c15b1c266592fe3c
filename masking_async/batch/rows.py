"""From an input row to a task: which operation, on what, with which checked parameters."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

import attrs

from masking_async import rules
from masking_async.batch.columns import DEFAULT_REGION_COLUMN, Columns
from masking_async.batch.sources import CONTROL_COLUMNS, Row
from masking_async.phones import check_region, to_e164
from masking_async.rules import Violation

__all__ = ["OPS", "Task", "to_task"]

OPS: Final = ("create", "update", "expire")
#: The parameters holding phone numbers, read as people write them before the rules see them.
_PARTIES: Final = ("first_party", "second_party")


@attrs.frozen
class Task:
    """One row, ready to run; ``violations`` non-empty means it must never be sent."""

    line: int
    op: str
    params: dict[str, Any]
    raw: Mapping[str, Any]
    ref: str | None = None
    session_uuid: str | None = None
    violations: tuple[Violation, ...] = ()
    #: What the results show beside the outcome: the parties as sent, the carried columns.
    shown: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def valid(self) -> bool:
        return not self.violations


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def to_task(
    row: Row,
    command_op: str | None,
    *,
    text_cells: bool,
    ignore: Collection[str] = (),
    columns: Columns | None = None,
    region: str | None = None,
) -> Task:
    """Check a row by the spec's rules; ``text_cells`` (CSV) means values need coercing first.

    ``command_op`` is the command's operation (``create``, ``update``, ``expire``): a row whose
    own ``op`` names another is invalid. ``None`` (``run``) takes each row's ``op``.
    ``ignore`` names columns set aside (a session attribute the operation does not use, as in a
    file ``list`` wrote): kept in ``raw``, never sent.
    ``columns`` matches the file's headers to the API's names and sets the user's own columns
    aside (carried to the results); ``region`` reads national phone numbers.
    """
    violations: list[Violation] = []
    carried: dict[str, Any] = {}
    fields = dict(row.fields)
    if columns is not None:
        fields, carried, violations = columns.split(fields)
    row_region = _text(fields.pop(DEFAULT_REGION_COLUMN, None))
    if row_region is not None:
        try:
            region = check_region(row_region)
        except ValueError as exc:
            violations.append(Violation(DEFAULT_REGION_COLUMN, str(exc)))
    row_op = (_text(fields.get("op")) or "").lower()
    op = command_op or row_op
    ref = _text(fields.get("ref"))
    session_uuid = _text(fields.get("session_uuid"))
    payload = {k: v for k, v in fields.items() if k not in CONTROL_COLUMNS and k not in ignore}
    if text_cells:
        payload, coerced = rules.coerce_text({k: str(v) for k, v in payload.items()})
        violations += coerced
    else:
        payload = {k: v for k, v in payload.items() if v is not None}
    unread = _read_parties(payload, region)
    violations += unread

    params: dict[str, Any] = {}
    if command_op and row_op and row_op != command_op:
        violations.append(Violation("op", f"is {row_op!r}, but this command runs {command_op}"))
    if op not in OPS:
        violations.append(Violation("op", "must be one of create, update, expire"))
    elif op == "create":
        if session_uuid:
            violations.append(Violation("session_uuid", "is not used by create"))
        params, found = rules.check_create(payload)
        violations += _besides(found, unread)
    else:
        if not session_uuid:
            violations.append(Violation("session_uuid", f"is required for {op}"))
        else:
            violations += rules.check_session_uuid(session_uuid)
        if op == "update":
            params, found = rules.check_update(payload)
            # An empty body only because a cell failed to parse is already explained.
            found = [v for v in found if v.field != "(body)" or not violations]
            violations += _besides(found, unread)
        else:
            violations += [Violation(name, "is not used by expire") for name in payload]
    return Task(
        line=row.line,
        op=op or "?",
        params=params,
        raw=row.fields,
        ref=ref,
        session_uuid=session_uuid,
        violations=tuple(violations),
        shown={**{k: params[k] for k in _PARTIES if k in params}, **carried},
    )


def _besides(found: list[Violation], said: list[Violation]) -> list[Violation]:
    """``found`` without the fields ``said`` already explains (one reason per unread number)."""
    fields = {v.field for v in said}
    return [v for v in found if v.field not in fields]


def _read_parties(payload: dict[str, Any], region: str | None) -> list[Violation]:
    """Phone numbers as people write them, put in E.164 in ``payload``; what cannot be read."""
    found: list[Violation] = []
    for name in _PARTIES:
        value = payload.get(name)
        if isinstance(value, str):
            try:
                payload[name] = to_e164(value, region)
            except ValueError as exc:
                found.append(Violation(name, str(exc)))
    return found
