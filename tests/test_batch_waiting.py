"""Faults cost the faulted rows, not the job: a waiting row holds no worker.

A row whose create lost its answer waits for its lookup; one whose request found no connection
waits out a backoff. Neither holds one of the run's workers (requests in flight) meanwhile, so the
other rows keep flowing. Looked up early (``settle`` after it left), a create that was applied is
adopted at once; "not applied" is concluded only once the request can no longer land, and a
request that never left is sent again with no lookup at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import masking_async.batch.drive as drive_module
from masking_async import ClientOptions, MaskingClient, RateLimit, RetryPolicy, Timeouts
from masking_async.batch import BatchOptions, Result, run_batch
from masking_async.batch.journal import Journal
from masking_async.batch.rowstate import STEPS, TRANSITIONS, IllegalTransition, step
from masking_async.client import AiohttpTransport, Response
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SystemClock,
)
from masking_async.emulator.config import Faults
from masking_async.emulator.faults import FaultRule
from masking_async.errors import ConnectError
from masking_async.phones import party_pairs
from masking_async.rules import normalize_party

#: A timeout far longer than the tests run: a row that waited for it would show.
PATIENT = ClientOptions(
    rate_limit=RateLimit.off(),
    retry=RetryPolicy(initial=0.01, maximum=0.05),
    timeouts=Timeouts(total=20.0, connect=5.0),
    adopt_settle=0.3,
)


def _csv(path: Path, count: int, start: int) -> list[tuple[str, str]]:
    pairs = list(party_pairs(count, start=start))
    path.write_text("first_party,second_party\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    return pairs


async def _run(
    emulator: Emulator,
    source: Path,
    *,
    options: ClientOptions = PATIENT,
    transport: Any = None,
    **batch: Any,
) -> tuple[Any, list[Result]]:
    results: list[Result] = []
    async with MaskingClient(
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        base_url=emulator.base_url,
        options=options,
        transport=transport,
    ) as client:
        summary = await run_batch(
            source,
            client=client,
            options=BatchOptions(op="create", progress=False, **batch),
            report=lambda _: None,
            on_result=results.append,
        )
    return summary, results


def _sessions_per_pair(emulator: Emulator) -> Counter[tuple[str, str]]:
    account = emulator.store.account(DEFAULT_AUTH_ID)
    assert account is not None
    return Counter(
        (normalize_party(s.first_party), normalize_party(s.second_party))
        for s in account.sessions.values()
    )


def _lookups(emulator: Emulator) -> int:
    return sum(1 for e in emulator.request_log if e.method == "GET")


# -- the row's life in one table ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["create", "change"])
def test_every_step_records_only_moves_the_journal_allows(kind: Any) -> None:
    """Each step's event is a legal move from its state, and its action fits what follows."""
    for (state, outcome), (event, _wait, action) in STEPS[kind].items():
        assert step(kind, state, outcome) == (event, _wait, action)
        after = state if event is None else TRANSITIONS[state, event]
        if action in ("send", "resend"):
            assert after in ("pending", "unknown")
        if action == "look":
            assert (kind, after) == ("create", "unknown")
        if action in ("ok", "failed"):
            assert after == action
        if action == "unresolved":
            assert after == "unknown"
    with pytest.raises(IllegalTransition):
        step(kind, "ok", "lost")
    assert ("unknown", "none") not in STEPS["change"]  # a change is never looked up


def test_only_a_conclusive_none_sends_a_lost_create_again() -> None:
    """A lost create is re-sent only after "none" (conclusive); an early "none yet" looks again."""
    sends = {k for k, (_, _, action) in STEPS["create"].items() if action == "send"}
    assert [k for k in sends if k[0] == "unknown"] == [("unknown", "none")]
    assert STEPS["create"]["unknown", "none_yet"] == (None, "conclusive", "look")
    assert STEPS["create"]["sending", "lost"][1] == "early"


# -- what each fault costs ---------------------------------------------------------------------


async def test_a_row_waiting_for_its_lookup_lets_the_others_through(tmp_path: Path) -> None:
    """One worker; the first create's answer is lost: the other rows all end before its lookup."""
    source = tmp_path / "pairs.csv"
    _csv(source, 20, start=9100)
    config = EmulatorConfig(rate_limit=None)
    async with Emulator(config, clock=SystemClock()) as emulator:
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
        summary, results = await _run(emulator, source, concurrency=1)
        assert summary.exit_status == 0, summary.format()
        assert results[-1].key == "1"
        assert results[-1].adopted
        assert [r.key for r in results[:-1]] == [str(n) for n in range(2, 21)]
        # Looked up early: long before its timeout, the row it made was adopted.
        assert results[-1].latency_ms is not None
        assert results[-1].latency_ms < 10_000
        assert set(_sessions_per_pair(emulator).values()) == {1}


async def test_a_connection_refused_is_sent_again_without_a_lookup(tmp_path: Path) -> None:
    """ "Never sent" is not "maybe applied": no lookup, no wait for the timeout, one session."""
    source = tmp_path / "pairs.csv"
    _csv(source, 3, start=9200)

    class RefusedTwice(AiohttpTransport):
        refused = 0

        async def send(self, method: str, url: str, **kwargs: Any) -> Response:
            if method == "POST" and self.refused < 2:
                self.refused += 1
                raise ConnectError("connection refused", origin="http://127.0.0.1:9")
            return await super().send(method, url, **kwargs)

    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        transport = RefusedTwice(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, PATIENT)
        summary, results = await _run(emulator, source, transport=transport, concurrency=2)
        assert summary.exit_status == 0, summary.format()
        assert _lookups(emulator) == 0
        assert not any(r.adopted for r in results)
        assert max(r.latency_ms or 0 for r in results) < 10_000
        assert set(_sessions_per_pair(emulator).values()) == {1}


async def test_an_answered_5xx_is_concluded_after_settle_not_the_timeout(tmp_path: Path) -> None:
    """A 500 before the create was applied: the server has finished, so settle later the lookup
    is conclusive and the row is sent again, long before timeout + settle."""
    source = tmp_path / "pairs.csv"
    _csv(source, 1, start=9300)
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        emulator.add_fault(FaultRule(kind="error", operation="create", phase="before", count=1))
        summary, results = await _run(emulator, source)
        assert summary.exit_status == 0, summary.format()
        assert (results[0].attempts, results[0].adopted) == (2, False)
        assert results[0].latency_ms is not None
        assert results[0].latency_ms < 10_000
        assert set(_sessions_per_pair(emulator).values()) == {1}


async def test_a_gateway_timeout_is_not_taken_as_finished(tmp_path: Path) -> None:
    """A 504 (a gateway gave up; the server may still work on it): conclusive only after
    timeout + settle, as a lost answer."""
    source = tmp_path / "pairs.csv"
    _csv(source, 1, start=9350)
    options = ClientOptions(
        rate_limit=RateLimit.off(),
        retry=RetryPolicy(initial=0.01, maximum=0.05),
        timeouts=Timeouts(total=1.5, connect=1.0),
        adopt_settle=0.3,
    )
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        emulator.add_fault(
            FaultRule(kind="error", operation="create", phase="before", status=504, count=1)
        )
        summary, results = await _run(emulator, source, options=options)
        assert summary.exit_status == 0, summary.format()
        assert results[0].latency_ms is not None
        assert results[0].latency_ms >= 1_800


async def test_the_deadline_is_honoured_to_the_second(tmp_path: Path) -> None:
    """Every create after the first loses its answer and every lookup fails: the rows end at
    ``deadline``, unresolved, not after the timeout + settle their conclusive lookup would need."""
    source = tmp_path / "pairs.csv"
    _csv(source, 4, start=9380)
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="before"))
        emulator.add_fault(FaultRule(kind="error", operation="list", status=503))
        began = time.monotonic()
        summary, results = await _run(emulator, source, deadline=1.5, concurrency=4)
        assert time.monotonic() - began < 10  # a conclusive lookup would be 20.3 s away
        assert summary.outcomes["unresolved"] == 4
        assert {r.outcome for r in results} == {"unresolved"}


def _journal_row_sent(journal: Path, ago: float) -> None:
    """Mark row 1 ``sending``, left ``ago`` seconds ago, as a crash would leave it."""
    with sqlite3.connect(journal) as db:
        sent = time.time() - ago
        db.execute(
            "UPDATE rows SET state='sending', sent_at=?, lookup_at=?, attempts=1 WHERE key='1'",
            (sent, sent + 20.3),
        )


async def _resume_after_crash(tmp_path: Path, *, version: int) -> tuple[Result, float]:
    """A journal whose row 1 was cut off 60 s ago (not applied); its resume's result, and the
    resume's seconds."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "pairs.journal"
    _csv(source, 1, start=9400 + version)
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        # Record the input without sending it: a dry registration through a stopped run.
        stop = anyio.Event()
        stop.set()
        async with MaskingClient(
            DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=PATIENT
        ) as client:
            await run_batch(
                source,
                client=client,
                options=BatchOptions(op="create", progress=False, journal=journal),
                stop=stop,
                report=lambda _: None,
            )
        _journal_row_sent(journal, ago=60)
        with sqlite3.connect(journal) as db:
            db.execute(f"PRAGMA user_version={version}")
        began = time.monotonic()
        summary, results = await _run(
            emulator,
            source,
            options=ClientOptions(
                rate_limit=RateLimit.off(),
                timeouts=Timeouts(total=1.0, connect=1.0),
                adopt_settle=0.3,
            ),
            journal=journal,
        )
        assert summary.exit_status == 0, summary.format()
        assert set(_sessions_per_pair(emulator).values()) == {1}
        return results[0], time.monotonic() - began


async def test_a_resume_waits_only_for_rows_whose_send_is_recent(tmp_path: Path) -> None:
    """Cut off a minute ago by a crash: the journal knows when it left, so the resume looks it
    up at once (conclusive), finds nothing and sends it; it does not wait from its own start."""
    result, seconds = await _resume_after_crash(tmp_path, version=2)
    assert seconds < 1.0
    assert (result.attempts, result.adopted) == (2, False)


async def test_a_journal_from_before_departures_were_recorded_waits_from_the_resume(
    tmp_path: Path,
) -> None:
    """An older journal recorded when a row was queued, not when it left: its ``sending`` rows
    are conclusive only timeout + settle after the resume began."""
    _, seconds = await _resume_after_crash(tmp_path, version=0)
    assert seconds >= 1.2


def test_a_new_journal_records_departures(tmp_path: Path) -> None:
    """A journal made now says it records when each request left; an old file does not."""
    journal = Journal.open(tmp_path / "new.journal")
    assert journal.exact_departures
    journal.close()
    with sqlite3.connect(tmp_path / "new.journal") as db:
        db.execute("PRAGMA user_version=0")
    again = Journal.open(tmp_path / "new.journal")
    assert not again.exact_departures
    again.close()


# -- by search: any faults, with latency ------------------------------------------------------

ROWS = 10


@st.composite
def _fault(draw: st.DrawFn) -> FaultRule:
    kind = draw(st.sampled_from(["error", "drop", "stall"]))
    return FaultRule(
        kind=kind,
        operation=draw(st.sampled_from(["create", "create", "list"])),
        phase=draw(st.sampled_from(["before", "after"])),
        probability=draw(st.sampled_from([0.2, 0.5])),
        count=draw(st.integers(1, 4)),
        stall_seconds=0.7,
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    schedule=st.lists(_fault(), max_size=3),
    concurrency=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_no_waiting_row_holds_a_worker_and_each_row_is_one_session(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    schedule: list[FaultRule],
    concurrency: int,
    seed: int,
) -> None:
    """Faults with 20-40 ms answers: every row ends ok as exactly one session, and each time a
    row starts to wait, it holds no worker and no more than ``concurrency`` are held."""
    folder = tmp_path_factory.mktemp("waiting")
    source = folder / "pairs.csv"
    pairs = _csv(source, ROWS, start=seed * ROWS)
    seen: list[tuple[bool, int]] = []
    wait = drive_module._wait

    async def watched(shared: Any, row: Any, *args: Any) -> bool:
        seen.append((id(row) in shared.holding, len(shared.holding)))
        return await wait(shared, row, *args)

    monkeypatch.setattr(drive_module, "_wait", watched)
    options = ClientOptions(
        rate_limit=RateLimit.off(),
        retry=RetryPolicy(initial=0.01, maximum=0.05),
        timeouts=Timeouts(total=0.6, connect=0.6),
        adopt_settle=0.3,
    )

    async def scenario() -> None:
        config = EmulatorConfig(rate_limit=None, faults=Faults(latency=0.02, jitter=0.02))
        async with Emulator(config, clock=SystemClock()) as emulator:
            for rule in schedule:
                emulator.add_fault(rule)
            summary, results = await _run(
                emulator, source, options=options, concurrency=concurrency, deadline=30
            )
            assert summary.exit_status == 0, summary.format()
            assert sorted(int(r.key) for r in results) == list(range(1, ROWS + 1))
            made = _sessions_per_pair(emulator)
            assert made == Counter((normalize_party(a), normalize_party(b)) for a, b in pairs)

    anyio.run(scenario)
    assert not any(holding for holding, _ in seen)  # (empty when no fault made a row wait)
    assert all(held <= concurrency for _, held in seen)
