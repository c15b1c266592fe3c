"""``sync``'s plan, searched by hypothesis: applied, it makes the server match the file."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from masking_async.batch.sync import Desired, Plan, SyncOptions, make_plan
from masking_async.models import Session

PAIRS = [(f"+1415555{i:04d}", f"+1415556{i:04d}") for i in range(6)]
_T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: What a create sets when the request leaves a parameter out (as the emulator does).
DEFAULTS = {"record": False, "initiate_call_to_first_party": False}
_maybe_bool = st.sampled_from([None, True, False])


@st.composite
def _world(draw: Any) -> tuple[list[Session], list[Desired], SyncOptions]:
    ids = itertools.count()
    sessions = []
    for pair in PAIRS:
        for _ in range(draw(st.integers(0, 3))):
            n = next(ids)
            sessions.append(
                Session(
                    session_uuid=f"00000000-0000-0000-0000-{n:012d}",
                    first_party=pair[0],
                    second_party=pair[1],
                    record=draw(st.booleans()),
                    initiate_call_to_first_party=draw(st.booleans()),
                    created_time=_T0 + timedelta(seconds=n),
                )
            )
    desired = []
    for line, pair in enumerate(draw(st.lists(st.sampled_from(PAIRS), unique=True)), start=2):
        params: dict[str, Any] = {"first_party": pair[0], "second_party": pair[1]}
        for name in DEFAULTS:
            if (value := draw(_maybe_bool)) is not None:
                params[name] = value
        desired.append(Desired(pair, params, line))
    options = SyncOptions(
        prune=draw(st.booleans()), replace=draw(st.booleans()), dedupe=draw(st.booleans())
    )
    return sessions, desired, options


def _apply(sessions: list[Session], plan: Plan) -> list[Session]:
    """The plan's rows applied to a model of the server's active sessions."""
    live = {s.session_uuid: s for s in sessions}
    made = itertools.count(10_000)
    for row in plan.rows():
        if row["op"] == "expire":
            assert row["session_uuid"] in live, "expired twice, or a session never listed"
            del live[row["session_uuid"]]
        elif row["op"] == "update":
            fields = {k: v for k, v in row.items() if k in DEFAULTS}
            live[row["session_uuid"]] = attrs.evolve(live[row["session_uuid"]], **fields)
        else:
            n = next(made)
            fields = {**DEFAULTS, **{k: v for k, v in row.items() if k in DEFAULTS}}
            uuid = f"00000000-0000-0000-0000-{n:012d}"
            live[uuid] = Session(
                session_uuid=uuid,
                first_party=row["first_party"],
                second_party=row["second_party"],
                created_time=_T0 + timedelta(seconds=n),
                **fields,
            )
    return list(live.values())


@settings(max_examples=300, deadline=None)
@given(_world())
def test_applying_the_plan_makes_the_server_match(world: Any) -> None:
    """Whatever the server holds: applied once, a second plan has nothing to do (bar what the
    options hold back), each wanted pair's newest session matches, nothing is expired twice."""
    sessions, desired, options = world
    plan = make_plan(desired, sessions, options)
    after = _apply(sessions, plan)
    again = make_plan(desired, after, options)
    assert not again.changes
    per_pair = Counter((s.first_party, s.second_party) for s in after)
    wanted = {row.pair for row in desired}
    assert wanted <= set(per_pair)
    if options.prune:
        assert set(per_pair) == wanted
    if options.dedupe:
        assert set(per_pair.values()) <= {1}
    if options.replace:
        assert not again.held
    if not (options.prune or options.dedupe or options.replace):
        assert {s.session_uuid for s in sessions} <= {s.session_uuid for s in after}
    assert plan.unchanged + sum(c.why in ("create", "update") for c in plan.changes) + len(
        plan.held
    ) + sum(c.why == "replace" and c.op == "create" for c in plan.changes) == len(desired)
