"""The batch engine from Python: its row state machine, mappings as rows, transient faults."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from masking_async import ClientOptions, MaskingClient, RateLimit, RetryPolicy, Timeouts
from masking_async.batch import BatchOptions, Result, run_batch
from masking_async.batch.rowstate import FINAL, TRANSITIONS, IllegalTransition, advance
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SystemClock,
)
from masking_async.emulator.faults import FaultRule
from masking_async.phones import party_pairs

STATES = ("pending", "sending", "ok", "failed", "unknown")
EVENTS = ("send", "applied", "refused", "not_applied", "lost", "adopted", "absent", "retry")
FAST = ClientOptions(
    rate_limit=RateLimit.off(),
    retry=RetryPolicy(initial=0.01, maximum=0.05),
    timeouts=Timeouts(total=0.5, connect=0.5),
    adopt_settle=0.3,
)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(STATES, EVENTS)))
def test_every_move_is_in_the_table_or_refused(state: Any, event: Any) -> None:
    """Each (state, event) either follows the written table or raises; finals only retry."""
    if (state, event) in TRANSITIONS:
        assert advance(state, event) == TRANSITIONS[state, event]
    else:
        with pytest.raises(IllegalTransition):
            advance(state, event)
    if state in FINAL and event != "retry":
        assert (state, event) not in TRANSITIONS


def test_unknown_is_left_only_by_a_conclusive_lookup() -> None:
    """Nothing downgrades 'unknown' to a re-send but 'absent'; it never becomes 'failed'."""
    exits = {event: target for (state, event), target in TRANSITIONS.items() if state == "unknown"}
    assert exits == {"adopted": "ok", "absent": "pending", "lost": "unknown"}


async def _client_run(emulator: Emulator, rows: Any, **options: Any) -> tuple[Any, list[Result]]:
    results: list[Result] = []
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=FAST
    ) as client:
        summary = await run_batch(
            rows,
            client=client,
            options=BatchOptions(op="create", progress=False, concurrency=8, **options),
            on_result=results.append,
        )
    return summary, results


async def test_mappings_with_keys_from_an_async_iterable(tmp_path: Path) -> None:
    """A backend's async stream of mappings: each key one session; resume by key skips nothing."""
    pairs = list(party_pairs(10, start=3000))

    async def rows() -> AsyncIterator[dict[str, Any]]:
        for number, (a, b) in enumerate(pairs):
            yield {"key": f"order-{number}", "first_party": a, "second_party": b}

    journal = tmp_path / "backend.journal"
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        summary, results = await _client_run(emulator, rows(), journal=journal)
        assert summary.exit_status == 0
        assert sorted(r.key for r in results) == sorted(f"order-{n}" for n in range(10))
        again, repeat = await _client_run(emulator, rows(), journal=journal)
        assert again.exit_status == 0
        assert all(r.resumed for r in repeat)
        assert {r.session_uuid for r in repeat} == {r.session_uuid for r in results}
        assert len(emulator.store.account(DEFAULT_AUTH_ID).sessions) == 10  # type: ignore[union-attr]


async def test_mappings_without_a_unique_key_are_refused() -> None:
    """A missing or repeated key is a failed row with its reason; nothing is sent for it."""
    (a, b), (c, d) = party_pairs(2, start=3100)
    rows = [
        {"key": "x", "first_party": a, "second_party": b},
        {"key": "x", "first_party": c, "second_party": d},
        {"first_party": c, "second_party": d},
    ]
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        summary, results = await _client_run(emulator, rows)
        assert summary.outcomes == {"ok": 1, "failed": 2}
        errors = sorted(r.error or "" for r in results if r.outcome == "failed")
        assert "repeats an earlier row's key" in errors[0] + errors[1]
        assert "every row needs a unique key" in errors[0] + errors[1]
        assert len(emulator.store.account(DEFAULT_AUTH_ID).sessions) == 1  # type: ignore[union-attr]


async def test_a_repeated_key_is_reported_as_itself_not_as_the_first_row(tmp_path: Path) -> None:
    """The repeat of a journalled key fails with its own line, no session, nothing sent."""
    (a, b), (c, d) = party_pairs(2, start=3150)
    first = {"key": "x", "first_party": a, "second_party": b}
    journal = tmp_path / "backend.journal"
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        await _client_run(emulator, [first], journal=journal)
        repeat = {"key": "x", "first_party": c, "second_party": d}
        summary, results = await _client_run(emulator, [first, repeat], journal=journal)
        assert summary.outcomes == {"ok": 1, "failed": 1}
        [refused] = [r for r in results if r.outcome == "failed"]
        assert (refused.line, refused.session_uuid, refused.attempts) == (2, None, 0)
        assert len(emulator.store.account(DEFAULT_AUTH_ID).sessions) == 1  # type: ignore[union-attr]


async def test_a_quarter_of_transient_faults_still_ends_every_row_ok(tmp_path: Path) -> None:
    """25 % of creates fail transiently (5xx, drops; before or after applying): all ok, once."""
    pairs = list(party_pairs(60, start=3200))
    rows = [{"key": str(n), "first_party": a, "second_party": b} for n, (a, b) in enumerate(pairs)]
    async with Emulator(EmulatorConfig(rate_limit=None, seed=5), clock=SystemClock()) as emulator:
        for kind, phase, status in (
            ("error", "before", 503),
            ("error", "after", 500),
            ("drop", "before", 500),
            ("drop", "after", 500),
        ):
            emulator.add_fault(
                FaultRule(
                    kind=kind, operation="create", phase=phase, status=status, probability=0.0625
                )
            )
        summary, results = await _client_run(emulator, rows, journal=tmp_path / "j")
        sessions = emulator.store.account(DEFAULT_AUTH_ID).sessions  # type: ignore[union-attr]
        assert summary.exit_status == 0
        assert summary.outcomes == {"ok": 60}
        assert len(sessions) == 60
        assert {r.session_uuid for r in results} == set(sessions)
        assert sum(r.attempts > 1 or r.adopted for r in results) > 0  # the faults did happen
