"""Exactly once, and in order, under faults and crashes: the batch engine's promise, by hypothesis.

Each example draws a fault schedule for the in-process emulator (500s, dropped answers and
stalls, each before or after the change is applied; 429s; failing lookups) and a crash point in
a row's life (at a journal commit, before or after it lands; or after a request left, before its
answer is read). The run crashes there, as ``kill -9`` would: nothing after the crash reaches the
journal. Then the job is resumed, faults still on, until it ends. The invariants: every create
row is exactly one session at the server, with exactly one final outcome, ``ok``; and after
updates of a few sessions, each session holds the value of its last row in the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from masking_async import ClientOptions, MaskingClient, RateLimit, RetryPolicy, Timeouts
from masking_async.batch import BatchOptions, Result, run_batch
from masking_async.batch.journal import Journal
from masking_async.batch.results import RESULT_FIELDS
from masking_async.client import AiohttpTransport, Response
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SystemClock,
)
from masking_async.emulator.faults import FaultRule
from masking_async.phones import party_pairs
from masking_async.rules import normalize_party

ROWS = 6
TIMEOUT = (
    0.6  # the client's; stalls are 0.1 s longer (they time out) and shorter than TIMEOUT + settle
)
OPTIONS = ClientOptions(
    rate_limit=RateLimit.off(),
    retry=RetryPolicy(initial=0.01, maximum=0.05),
    timeouts=Timeouts(total=TIMEOUT, connect=TIMEOUT),
    adopt_settle=0.4,
)


class Crash(BaseException):
    """The process dies here (a BaseException: nothing in the engine may catch it)."""


class CrashPoint:
    """Dies at the ``at``-th step of the kind ``where``; afterwards the journal takes nothing."""

    def __init__(self, where: str, at: int) -> None:
        self.where, self.at, self.seen, self.crashed = where, at, 0, False

    def step(self, where: str) -> None:
        if self.crashed:
            raise Crash
        if where == self.where:
            self.seen += 1
            if self.seen == self.at:
                self.crashed = True
                raise Crash


class CrashingTransport:
    """The real transport; a crash point may kill the process once a request has left."""

    def __init__(self, inner: AiohttpTransport, crash: CrashPoint) -> None:
        self.inner, self.crash = inner, crash

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        if self.crash.crashed:
            raise Crash
        response = await self.inner.send(method, url, params=params, json_body=json_body)
        if method == "POST":
            self.crash.step("after-send")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class CutOffInFlight(CrashingTransport):
    """Dies 0.1 s after the ``nth`` create left, while the server may still be working on it."""

    def __init__(self, inner: AiohttpTransport, crash: CrashPoint, nth: int) -> None:
        super().__init__(inner, crash)
        self.nth, self.creates = nth, 0

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        if method == "POST":
            self.creates += 1
            if self.creates == self.nth:
                with anyio.move_on_after(0.1):
                    await self.inner.send(method, url, params=params, json_body=json_body)
                self.crash.crashed = True
                raise Crash
        return await super().send(method, url, params=params, json_body=json_body)


@pytest.fixture
def crashing_journal(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[CrashPoint]]:
    """Journal commits pass through the current crash point (the list's last, if any)."""
    points: list[CrashPoint] = []
    commit = Journal.commit

    async def crashing(self: Journal, entry: Any) -> None:
        point = points[-1] if points else None
        if point is not None:
            point.step("before-commit")
        await commit(self, entry)
        if point is not None:
            point.step("after-commit")

    monkeypatch.setattr(Journal, "commit", crashing)
    return points


def _rows(path: Path, start: int) -> list[dict[str, str]]:
    pairs = list(party_pairs(ROWS - 1, start=start))
    rows = [{"first_party": a, "second_party": b, "session_expiry": "600"} for a, b in pairs]
    rows.append(dict(rows[0]))  # the same pair twice: two sessions, never one adopted twice
    rows[1]["session_expiry"] = "60"  # may expire before a resume: must still be found
    path.write_text(
        "first_party,second_party,session_expiry\n"
        + "".join(f"{r['first_party']},{r['second_party']},{r['session_expiry']}\n" for r in rows)
    )
    return rows


async def _run(
    emulator: Emulator,
    source: Path,
    journal: Path,
    crash: CrashPoint | None,
    cut_off: int | None = None,
    op: str = "create",
) -> int | None:
    """One run of the job; ``None`` when it crashed (or died at the ``cut_off``-th create)."""
    inner = AiohttpTransport(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, OPTIONS)
    dies = crash or CrashPoint("never", 0)
    transport = CutOffInFlight(inner, dies, cut_off) if cut_off else CrashingTransport(inner, dies)
    options = BatchOptions(
        op=op, journal=journal, concurrency=3, progress=False, deadline=30, grace=0
    )
    try:
        async with MaskingClient(
            DEFAULT_AUTH_ID,
            DEFAULT_AUTH_TOKEN,
            base_url=emulator.base_url,
            options=OPTIONS,
            transport=transport,
        ) as client:
            summary = await run_batch(source, client=client, options=options, report=lambda _: None)
    except BaseException as exc:  # a crash comes out alone or inside an exception group
        if _is_crash(exc):
            return None
        raise
    return summary.exit_status


def _is_crash(exc: BaseException) -> bool:
    if isinstance(exc, Crash):
        return True
    inner = getattr(exc, "exceptions", None)  # an exception group (also on Python 3.10)
    return inner is not None and all(_is_crash(each) for each in inner)


def _check_exactly_once(emulator: Emulator, rows: list[dict[str, str]], results: Path) -> None:
    account = emulator.store.account(DEFAULT_AUTH_ID)
    assert account is not None
    made = Counter(
        (normalize_party(s.first_party), normalize_party(s.second_party))
        for s in account.sessions.values()
    )
    wanted = Counter(
        (normalize_party(r["first_party"]), normalize_party(r["second_party"])) for r in rows
    )
    assert made == wanted, f"server has {dict(made)}"
    # A result line is the Result's fields, then the parties as sent (and any carried columns).
    final = [
        Result(**{k: v for k, v in json.loads(line).items() if k in RESULT_FIELDS})
        for line in results.read_text().splitlines()
    ]
    assert sorted(r.key for r in final) == [str(i) for i in range(1, len(rows) + 1)]
    assert {r.outcome for r in final} == {"ok"}
    assert len({r.session_uuid for r in final}) == len(rows)
    assert {r.session_uuid for r in final} == set(account.sessions)


@st.composite
def _rule(
    draw: st.DrawFn, operations: tuple[str, ...] = ("create", "create", "list", "get")
) -> FaultRule:
    kind = draw(st.sampled_from(["error", "throttle", "drop", "stall"]))
    return FaultRule(
        kind=kind,
        operation=draw(st.sampled_from(operations)),
        phase="before" if kind == "throttle" else draw(st.sampled_from(["before", "after"])),
        probability=draw(st.sampled_from([0.1, 0.25, 0.5])),
        count=draw(st.integers(1, 6)),
        stall_seconds=TIMEOUT + 0.1,
    )


SCHEDULE = st.lists(_rule(), max_size=4)
#: Where the first run dies: a kind of step and which one of its kind (None: it does not).
CRASH = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["before-commit", "after-commit", "after-send"]), st.integers(1, 2 * ROWS)
    ),
)


@settings(
    max_examples=16,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=SCHEDULE, crash=CRASH, seed=st.integers(0, 2**16))
@example(  # a create applied then its answer dropped, then the process dies before the commit
    schedule=[FaultRule(kind="drop", operation="create", phase="after", count=2)],
    crash=("after-send", 3),
    seed=1,
)
@example(  # a create held by a slow server past the client's timeout, applied after it left
    schedule=[
        FaultRule(kind="stall", operation="create", phase="before", stall_seconds=TIMEOUT + 0.1)
    ],
    crash=None,
    seed=2,
)
@example(  # lookups fail while creates are lost: rows stay unknown, never re-sent blindly
    schedule=[
        FaultRule(kind="drop", operation="create", phase="after", count=3),
        FaultRule(kind="error", operation="list", status=503, count=4),
    ],
    crash=("before-commit", 5),
    seed=3,
)
def test_every_row_is_exactly_one_session_whatever_fails(
    tmp_path_factory: pytest.TempPathFactory,
    crashing_journal: list[CrashPoint],
    schedule: list[FaultRule],
    crash: tuple[str, int] | None,
    seed: int,
) -> None:
    """Any fault schedule and crash point, then resumes: each row is exactly one session, ok."""
    folder = tmp_path_factory.mktemp("once")
    source, journal = folder / "pairs.csv", folder / "pairs.journal"
    rows = _rows(source, start=seed * 10)

    async def scenario() -> None:
        config = EmulatorConfig(rate_limit=None)
        async with Emulator(config, clock=SystemClock()) as emulator:
            for rule in schedule:
                emulator.add_fault(rule)
            crashing_journal.append(CrashPoint(*crash) if crash else CrashPoint("never", 0))
            status = await _run(emulator, source, journal, crashing_journal[-1])
            for _ in range(6):  # resume, faults still on, until the job ends
                if status == 0:
                    break
                crashing_journal.append(CrashPoint("never", 0))
                status = await _run(emulator, source, journal, None)
            assert status == 0
            emulator.clear_faults()
            _check_exactly_once(emulator, rows, folder / "pairs.results.jsonl")

    anyio.run(scenario)


def test_a_create_held_by_a_pause_then_cut_off_in_flight_is_found_not_sent_again(
    tmp_path: Path,
) -> None:
    """Journalled ``sending``, then held 1 s by a 429's pause, then cut off by a crash while the
    server still works on it: the resume must not take the journalled time for when it left."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "pairs.journal"
    source.write_text("first_party,second_party\n+14152000900,+14152000901\n")

    async def scenario() -> None:
        async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
            emulator.add_fault(FaultRule(kind="throttle", operation="create", count=1))
            emulator.add_fault(
                FaultRule(kind="stall", operation="create", count=1, stall_seconds=TIMEOUT + 0.1)
            )
            assert await _run(emulator, source, journal, None, cut_off=2) is None
            assert await _run(emulator, source, journal, None) == 0
            sessions = list(emulator.store.account(DEFAULT_AUTH_ID).sessions)  # type: ignore[union-attr]
            assert len(sessions) == 1
            final = json.loads((tmp_path / "pairs.results.jsonl").read_text())
            assert (final["outcome"], final["adopted"]) == ("ok", True)
            assert final["session_uuid"] == sessions[0]

    anyio.run(scenario)


SESSIONS = 2


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    schedule=st.lists(_rule(("update",)), max_size=3),
    crash=CRASH,
    targets=st.lists(st.integers(0, SESSIONS - 1), min_size=2, max_size=6),
)
@example(  # held past the timeout, then applied: a re-send at once would let the next row pass
    schedule=[FaultRule(kind="stall", operation="update", count=1, stall_seconds=TIMEOUT + 0.1)],
    crash=None,
    targets=[0, 0],
)
def test_updates_land_in_file_order_whatever_fails(
    tmp_path_factory: pytest.TempPathFactory,
    crashing_journal: list[CrashPoint],
    schedule: list[FaultRule],
    crash: tuple[str, int] | None,
    targets: list[int],
) -> None:
    """Updates of a few sessions under faults, a crash and resumes: each session ends with the
    value of its last row in the file, never an earlier one re-applied or landing late."""
    folder = tmp_path_factory.mktemp("order")
    source, journal = folder / "changes.csv", folder / "changes.journal"
    expiries = [1000 + 100 * row for row in range(len(targets))]  # one value per row

    async def scenario() -> None:
        async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
            async with MaskingClient(
                DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=OPTIONS
            ) as client:
                pairs = party_pairs(SESSIONS, start=9300)
                made = [
                    await client.create_session({"first_party": a, "second_party": b})
                    for a, b in pairs
                ]
            uuids = [session.session_uuid for session in made]
            source.write_text(
                "session_uuid,session_expiry\n"
                + "".join(f"{uuids[t]},{e}\n" for t, e in zip(targets, expiries, strict=True))
            )
            for rule in schedule:
                emulator.add_fault(rule)
            crashing_journal.append(CrashPoint(*crash) if crash else CrashPoint("never", 0))
            status = await _run(emulator, source, journal, crashing_journal[-1], op="update")
            for _ in range(6):
                if status == 0:
                    break
                crashing_journal.append(CrashPoint("never", 0))
                status = await _run(emulator, source, journal, None, op="update")
            assert status == 0
            await anyio.sleep(TIMEOUT + 0.2)  # anything still held by the server has landed
            account = emulator.store.account(DEFAULT_AUTH_ID)
            assert account is not None
            for index, uuid in enumerate(uuids):
                last = [e for t, e in zip(targets, expiries, strict=True) if t == index]
                if last:
                    record = account.sessions[uuid]
                    assert record.expiry - record.modified == pytest.approx(last[-1], abs=0.01)

    anyio.run(scenario)
