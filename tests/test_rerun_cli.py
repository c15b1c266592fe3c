"""Running a batch command again is safe by default: the journal beside the input (issue 17)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs
from tests.cli_support import run_cli
from tests.test_batch_cli import _sessions

QUICK = ("--no-progress", "--rate", "off")


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def _pairs(path: Path, count: int, start: int = 0) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "first_party", "second_party"])
        for i, (a, b) in enumerate(party_pairs(count, countries=("US", "GB"), start=start)):
            writer.writerow([f"R{i}", a, b])


def _lines(path: Path) -> list[dict[str, object]]:
    with path.open() as handle:
        return [json.loads(line) for line in handle]


def _active_per_pair(url: str) -> Counter[tuple[str, str]]:
    return Counter(
        (s["first_party"], s["second_party"]) for s in _sessions(url) if s["status"] == "active"
    )


def test_the_same_create_twice_makes_each_session_once(server: str, tmp_path: Path) -> None:
    """`create pairs.csv` twice, no --journal: 500 sessions, not 1,000; the second run says why."""
    _pairs(tmp_path / "pairs.csv", 500)
    first = run_cli(server, tmp_path, "create", "pairs.csv", *QUICK)
    assert first.returncode == 0, first.stderr
    assert "journal: pairs.csv.create.journal" in first.stderr
    second = run_cli(server, tmp_path, "create", "pairs.csv", *QUICK)
    assert second.returncode == 0, second.stderr
    assert "500 rows concluded by an earlier run; nothing sent" in second.stderr
    per_pair = _active_per_pair(server)
    assert len(per_pair) == 500
    assert set(per_pair.values()) == {1}
    results = _lines(tmp_path / "pairs.results.jsonl")
    assert len(results) == 500
    assert all(r["resumed"] for r in results)


def test_no_journal_sends_again_and_says_so(server: str, tmp_path: Path) -> None:
    """--no-journal keeps nothing: the summary warns that running it again sends again."""
    _pairs(tmp_path / "pairs.csv", 5)
    done = run_cli(server, tmp_path, "create", "pairs.csv", "--no-journal", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "no journal: running this again sends every row again" in done.stderr
    assert not list(tmp_path.glob("*.journal"))


def test_fresh_starts_over_on_purpose(server: str, tmp_path: Path) -> None:
    """--fresh discards the earlier journal: every row is sent again."""
    _pairs(tmp_path / "pairs.csv", 5)
    assert run_cli(server, tmp_path, "create", "pairs.csv", *QUICK).returncode == 0
    again = run_cli(server, tmp_path, "create", "pairs.csv", "--fresh", *QUICK)
    assert again.returncode == 0, again.stderr
    assert "discarded the journal" in again.stderr
    assert set(_active_per_pair(server).values()) == {2}


def test_another_command_keeps_its_own_journal(server: str, tmp_path: Path) -> None:
    """`expire` after `create` on one file is not refused: each command has its own journal."""
    _pairs(tmp_path / "pairs.csv", 3)
    assert run_cli(server, tmp_path, "create", "pairs.csv", *QUICK).returncode == 0
    uuids = [r["session_uuid"] for r in _lines(tmp_path / "pairs.results.jsonl")]
    (tmp_path / "gone.csv").write_text("session_uuid\n" + "".join(f"{u}\n" for u in uuids))
    expired = run_cli(server, tmp_path, "expire", "gone.csv", *QUICK)
    assert expired.returncode == 0, expired.stderr
    assert (tmp_path / "gone.csv.expire.journal").exists()
    assert not _active_per_pair(server)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--no-journal", "--journal", "j"), "--no-journal and --journal"),
        (("--no-journal", "--fresh"), "--no-journal and --fresh"),
        (("--no-journal", "--retry-failed"), "--no-journal and --retry-failed"),
    ],
)
def test_contradictory_journal_options_are_one_line(
    tmp_path: Path, flags: tuple[str, ...], says: str
) -> None:
    """Options that contradict each other: exit 2, one line, nothing sent."""
    _pairs(tmp_path / "pairs.csv", 1)
    done = run_cli("http://127.0.0.1:9", tmp_path, "create", "pairs.csv", *flags, *QUICK)
    assert done.returncode == 2
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_failed_row_fixed_in_place_is_sent_with_retry_failed(server: str, tmp_path: Path) -> None:
    """Fix in place: a row that ended failed, corrected in the file, is sent by --retry-failed;
    a changed ok row is still refused, and nothing is sent twice."""
    pairs = list(party_pairs(4, countries=("US",), start=900))
    rows = [f"R{i},{a},{b}" for i, (a, b) in enumerate(pairs)]
    broken = [*rows[:3], f"R3,{pairs[3][0]},not-a-number"]
    source = tmp_path / "pairs.csv"
    source.write_text("ref,first_party,second_party\n" + "\n".join(broken) + "\n")
    first = run_cli(server, tmp_path, "create", "pairs.csv", *QUICK)
    assert first.returncode == 1, first.stderr
    source.write_text("ref,first_party,second_party\n" + "\n".join(rows) + "\n")
    told = run_cli(server, tmp_path, "create", "pairs.csv", *QUICK)
    assert told.returncode == 1, told.stderr
    assert "--retry-failed sends the corrected row" in told.stderr
    fixed = run_cli(server, tmp_path, "create", "pairs.csv", "--retry-failed", *QUICK)
    assert fixed.returncode == 0, fixed.stderr
    assert "corrected row is sent" in fixed.stderr
    assert len(_active_per_pair(server)) == 4
    assert run_cli(server, tmp_path, "create", "pairs.csv", *QUICK).returncode == 0
    moved = [f"R0,{pairs[0][0]},{pairs[3][1]}", *rows[1:]]  # an ok row changed: refused
    source.write_text("ref,first_party,second_party\n" + "\n".join(moved) + "\n")
    refused = run_cli(server, tmp_path, "create", "pairs.csv", "--retry-failed", *QUICK)
    assert refused.returncode == 1, refused.stderr
    assert "differs from the input" in refused.stderr
    assert sum(_active_per_pair(server).values()) == 4


def test_skip_active_leaves_pairs_that_have_a_session(server: str, tmp_path: Path) -> None:
    """create --skip-active: rows whose pair has an active session end skipped, naming it."""
    _pairs(tmp_path / "some.csv", 3)
    assert run_cli(server, tmp_path, "create", "some.csv", *QUICK).returncode == 0
    made = {r["ref"]: r["session_uuid"] for r in _lines(tmp_path / "some.results.jsonl")}
    _pairs(tmp_path / "all.csv", 5)  # the same 3 pairs, and 2 more
    done = run_cli(server, tmp_path, "create", "all.csv", "--skip-active", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "3 skipped (the pair has an active session)" in done.stderr
    results = {r["ref"]: r for r in _lines(tmp_path / "all.results.jsonl")}
    assert [results[f"R{i}"]["outcome"] for i in range(5)] == ["skipped"] * 3 + ["ok"] * 2
    assert all(results[ref]["session_uuid"] == uuid for ref, uuid in made.items())
    assert set(_active_per_pair(server).values()) == {1}
    assert len(_active_per_pair(server)) == 5
