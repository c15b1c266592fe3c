"""Fix in place and skip-active from Python: ``run_batch`` with mappings (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from masking_async.batch import Result
from masking_async.emulator import DEFAULT_AUTH_ID, Emulator, EmulatorConfig, SystemClock
from masking_async.emulator.faults import FaultRule
from masking_async.phones import party_pairs
from tests.test_batch_engine import _client_run


def _count(emulator: Emulator) -> int:
    return len(emulator.store.records(DEFAULT_AUTH_ID))


async def test_a_failed_mapping_corrected_under_its_key_is_sent_with_retry_failed(
    tmp_path: Path,
) -> None:
    """A row the server refused (400) may change under its key; only retry_failed sends it,
    and a changed ok row is still refused."""
    (a, b), (c, d) = party_pairs(2, start=3300)
    journal = tmp_path / "backend.journal"
    good = {"key": "ok", "first_party": a, "second_party": b}
    refused_row = {"key": "fix", "first_party": c, "second_party": d, "record": True}
    fixed = {**refused_row, "record": False}
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        emulator.add_fault(FaultRule(kind="error", operation="create", status=400, count=1))
        first, _ = await _client_run(emulator, [refused_row, good], journal=journal)
        assert first.outcomes == {"ok": 1, "failed": 1}
        told, _ = await _client_run(emulator, [fixed, good], journal=journal)
        assert told.outcomes == {"ok": 1, "failed": 1}
        sent, results = await _client_run(
            emulator, [fixed, good], journal=journal, retry_failed=True
        )
        assert sent.exit_status == 0
        assert {r.key: r.resumed for r in results} == {"ok": True, "fix": False}
        moved = {**good, "record": True}  # an ok row changed: refused even so
        again, _ = await _client_run(emulator, [moved, fixed], journal=journal, retry_failed=True)
        assert again.outcomes == {"ok": 1, "failed": 1}
        assert _count(emulator) == 2


async def test_skip_active_from_python_names_the_pairs_session() -> None:
    """skip_active: a mapping whose pair has an active session ends skipped with its uuid."""
    (a, b), (c, d) = party_pairs(2, start=3400)
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        _, made = await _client_run(emulator, [{"key": "1", "first_party": a, "second_party": b}])
        rows: list[dict[str, Any]] = [
            {"key": "1", "first_party": a, "second_party": b},
            {"key": "2", "first_party": c, "second_party": d},
        ]
        summary, results = await _client_run(emulator, rows, skip_active=True)
        by_key: dict[str, Result] = {r.key: r for r in results}
        assert summary.exit_status == 0
        assert by_key["1"].outcome == "skipped"
        assert by_key["1"].session_uuid == made[0].session_uuid
        assert by_key["2"].outcome == "ok"
        assert _count(emulator) == 2
        assert "1 skipped" in summary.format()
