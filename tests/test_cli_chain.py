"""What one command writes, the next one reads: list into expire/update, times, failed files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli

from masking_async.batch.sources import first_columns, read_rows, unused_columns
from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs

LIST_COLUMNS = ["session_uuid", "status", "first_party", "second_party", "virtual_number"]


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def _pairs(path: Path, count: int, start: int, extra: str = "") -> None:
    pairs = party_pairs(count, countries=("US",), start=start)
    header = "first_party,second_party" + ("," + extra.split("=")[0] if extra else "")
    cell = "," + extra.split("=")[1] if extra else ""
    path.write_text(header + "\n" + "".join(f"{a},{b}{cell}\n" for a, b in pairs))


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_times_that_list_prints_are_accepted_as_filters(server: str, tmp_path: Path) -> None:
    """A created_time exactly as `list` printed it is taken back by --created-time--gte."""
    _pairs(tmp_path / "p.csv", 2, start=200)
    assert run_cli(server, tmp_path, "create", "p.csv", "--no-progress").returncode == 0
    listed = run_cli(server, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    sessions = _lines(listed.stdout)
    printed = sessions[0]["created_time"]
    assert printed.endswith("+00:00")
    again = run_cli(server, tmp_path, "list", "--created-time--gte", printed)
    assert again.returncode == 0, again.stderr
    assert sessions[0]["session_uuid"] in {s["session_uuid"] for s in _lines(again.stdout)}
    where = run_cli(
        server,
        tmp_path,
        "expire",
        "--where",
        f"created_time__gte={printed}",
        "--dry-run",
        "--no-progress",
    )
    assert where.returncode == 0, where.stderr


def test_a_failed_file_with_its_reason_column_runs_again_as_it_is(
    server: str, tmp_path: Path
) -> None:
    """The reason column a failed file carries is dropped on reading: the rows run as before."""
    _pairs(tmp_path / "failed.csv", 2, start=220, extra="error=no virtual number available")
    done = run_cli(server, tmp_path, "create", "failed.csv", "--out", "r.jsonl", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert [r["outcome"] for r in _lines((tmp_path / "r.jsonl").read_text())] == ["ok", "ok"]
    (tmp_path / "failed.jsonl").write_text(
        json.dumps({"session_uuid": "x", "op": "expire", "error": "404: not found"}) + "\n"
    )
    assert [row.fields for row in read_rows(tmp_path / "failed.jsonl", "jsonl")] == [
        {"session_uuid": "x", "op": "expire"}
    ]


def test_list_output_names_the_columns_expire_and_update_set_aside(
    server: str, tmp_path: Path
) -> None:
    """The attributes `list` writes are what expire (all) and update (not its own) set aside."""
    _pairs(tmp_path / "p.csv", 1, start=240)
    assert run_cli(server, tmp_path, "create", "p.csv", "--no-progress").returncode == 0
    assert run_cli(server, tmp_path, "list", "--out", "active.csv").returncode == 0
    columns = first_columns(tmp_path / "active.csv", "csv")
    assert columns[: len(LIST_COLUMNS)] == LIST_COLUMNS
    assert set(unused_columns("expire", columns)) == set(columns) - {"session_uuid"}
    assert "first_party" in unused_columns("update", columns)
    assert unused_columns("update", ["session_uuid", "first_party"]) == []
    assert unused_columns("create", columns) == []


def test_list_output_feeds_expire_and_update(server: str, tmp_path: Path) -> None:
    """`list --out active.csv` then `update active.csv` and `expire active.csv` succeed."""
    _pairs(tmp_path / "p.csv", 3, start=260)
    assert run_cli(server, tmp_path, "create", "p.csv", "--no-progress").returncode == 0
    assert (
        run_cli(server, tmp_path, "list", "--status", "active", "--out", "active.csv").returncode
        == 0
    )
    rows = (tmp_path / "active.csv").read_text().splitlines()
    (tmp_path / "longer.csv").write_text(
        "\n".join([rows[0] + ",session_expiry", *(row + ",7200" for row in rows[1:])]) + "\n"
    )
    updated = run_cli(server, tmp_path, "update", "longer.csv", "--no-progress")
    assert updated.returncode == 0, updated.stderr
    assert "are not used by update; ignored" in updated.stderr
    expired = run_cli(server, tmp_path, "expire", "active.csv", "--no-progress")
    assert expired.returncode == 0, expired.stderr
    assert "are not used by expire; ignored" in expired.stderr
    statuses = {s["status"] for s in _lines(run_cli(server, tmp_path, "list").stdout)}
    assert statuses == {"expired"}


def test_a_json_array_on_one_line_gives_each_record_its_ordinal(
    server: str, tmp_path: Path
) -> None:
    """Records sharing one line keep distinct ordinals and are each created once."""
    pairs = list(party_pairs(3, countries=("US",), start=280))
    rows = [{"first_party": a, "second_party": b} for a, b in pairs]
    (tmp_path / "one.json").write_text(json.dumps(rows))
    assert [(r.line, r.record) for r in read_rows(tmp_path / "one.json", "json")] == [
        (1, 1),
        (1, 2),
        (1, 3),
    ]
    done = run_cli(server, tmp_path, "create", "one.json", "--out", "r.jsonl", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert len(_lines(run_cli(server, tmp_path, "list").stdout)) == 3
