"""`masking-async resolve`: an ambiguous create settled by hand, through the real command line.

A create's answer is lost and its lookup finds two sessions that match it: the one it made, and
a twin another system made a moment before. The run cannot tell them apart (exit 4, both named);
`resolve` records the person's choice, and the next run reports the row ok without sending it.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli

from masking_async.batch.journal import Journal, JournalEntry, JournalError, row_digest
from masking_async.batch.resolve import settle
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process

PAIR = {"first_party": "+14152009001", "second_party": "+14152009002", "session_expiry": "600"}
QUICK = ("--rate", "off", "--no-progress", "--timeout", "0.5", "--settle", "0.3")
_AUTH = base64.b64encode(f"{DEFAULT_AUTH_ID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()


def _send(url: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Basic {_AUTH}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _results(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "pairs.results.jsonl").read_text().splitlines()]


def _sessions(url: str) -> set[str]:
    page = _send(url, "GET", f"/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/?limit=20")
    return {s["session_uuid"] for s in page["response"]["objects"]}


@pytest.fixture
def ambiguous(tmp_path: Path) -> Iterator[tuple[str, Path, str, str]]:
    """(emulator URL, folder, the twin's id, the row's own id) after a run left row 1 ambiguous."""
    with emulator_process("--rate-limit", "off") as url:
        body = {**PAIR, "session_expiry": int(PAIR["session_expiry"])}
        twin = _send(url, "POST", f"/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/", body)
        _send(
            url,
            "POST",
            "/emulator/faults",
            {"kind": "drop", "operation": "create", "phase": "after", "count": 1},
        )
        (tmp_path / "pairs.csv").write_text(",".join(PAIR) + "\n" + ",".join(PAIR.values()) + "\n")
        done = run_cli(url, tmp_path, "create", "pairs.csv", "--journal", "pairs.journal", *QUICK)
        assert done.returncode == 4, done.stderr
        assert "1 unresolved row matches several sessions" in done.stderr
        assert "masking-async resolve ROW --journal J --session UUID" in done.stderr
        [result] = _results(tmp_path)
        assert result["outcome"] == "unresolved"
        own = (_sessions(url) - {twin["session_uuid"]}).pop()
        assert sorted(result["candidates"]) == sorted([twin["session_uuid"], own])
        yield url, tmp_path, twin["session_uuid"], own


def test_the_chosen_candidate_becomes_the_rows_session(
    ambiguous: tuple[str, Path, str, str],
) -> None:
    """The row's own candidate, named by hand: the next run reports it ok and sends nothing."""
    url, folder, twin, own = ambiguous
    settled = run_cli(url, folder, "resolve", "1", "--journal", "pairs.journal", "--session", own)
    assert settled.returncode == 0, settled.stderr
    assert f"row 1 (line 2): ok, session {own}" in settled.stderr
    again = run_cli(url, folder, "create", "pairs.csv", "--journal", "pairs.journal", *QUICK)
    assert again.returncode == 0, again.stderr
    [result] = _results(folder)
    assert (result["outcome"], result["session_uuid"], result["adopted"]) == ("ok", own, True)
    assert _sessions(url) == {twin, own}  # nothing sent again
    assert not (folder / "pairs.unresolved.csv").exists()


def test_not_applied_sends_the_row_again(ambiguous: tuple[str, Path, str, str]) -> None:
    """--not-applied: the next run sends the row again and it ends ok with a new session."""
    url, folder, twin, own = ambiguous
    settled = run_cli(url, folder, "resolve", "1", "--journal", "pairs.journal", "--not-applied")
    assert settled.returncode == 0, settled.stderr
    again = run_cli(url, folder, "create", "pairs.csv", "--journal", "pairs.journal", *QUICK)
    assert again.returncode == 0, again.stderr
    [result] = _results(folder)
    assert result["outcome"] == "ok"
    assert result["session_uuid"] not in (twin, own)
    assert len(_sessions(url)) == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("1", "--session", "4189591e-d004-4c5e-8c5a-000000000000"), "not a candidate of row 1"),
        (("1", "--session", "../x"), "not a session id"),
        (("9", "--not-applied"), "no row '9'"),
        (("1",), "one of the arguments --session --not-applied is required"),
    ],
)
def test_a_choice_it_cannot_take_is_one_line_and_exit_2(
    ambiguous: tuple[str, Path, str, str], args: tuple[str, ...], says: str
) -> None:
    """A session that is no candidate, no id, an unknown row, no choice: one line, exit 2."""
    url, folder, _, _ = ambiguous
    refused = run_cli(url, folder, "resolve", *args, "--journal", "pairs.journal")
    assert refused.returncode == 2
    assert says in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr


def test_a_row_that_is_settled_cannot_be_settled_again(
    ambiguous: tuple[str, Path, str, str],
) -> None:
    """Settling is once: the row is ok afterwards, and ok rows are not settled."""
    url, folder, _, own = ambiguous
    args = ("resolve", "1", "--journal", "pairs.journal", "--session", own)
    assert run_cli(url, folder, *args).returncode == 0
    refused = run_cli(url, folder, *args)
    assert refused.returncode == 2
    assert "row 1 is ok with no ambiguous lookup to settle" in refused.stderr


def test_a_journal_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    """A journal path with no file: one line, exit 2, and no journal left behind."""
    refused = run_cli(
        "http://127.0.0.1:9", tmp_path, "resolve", "1", "--journal", "no.journal", "--not-applied"
    )
    assert refused.returncode == 2
    assert "no such journal" in refused.stderr
    assert not (tmp_path / "no.journal").exists()


def test_a_journal_a_run_holds_is_not_touched(ambiguous: tuple[str, Path, str, str]) -> None:
    """While a run holds the journal (its lock), resolve refuses at once: one line, exit 2."""
    url, folder, _, own = ambiguous
    held = Journal.open(folder / "pairs.journal")
    try:
        refused = run_cli(
            url, folder, "resolve", "1", "--journal", "pairs.journal", "--session", own
        )
    finally:
        held.close()
    assert refused.returncode == 2
    assert "another run is using this journal" in refused.stderr


# -- rows the engine resolves itself: a person's guess could only make a duplicate -------------

TWIN_A, TWIN_B = "4189591e-d004-4c5e-8c5a-00000000000a", "4189591e-d004-4c5e-8c5a-00000000000b"
ROW = {"first_party": "+14152009101", "second_party": "+14152009102"}


async def _journal_with(path: Path, *entries: JournalEntry) -> None:
    journal = Journal.open(path)
    journal.register(entries, {"source": str(path.with_suffix(".csv")), "format": "csv"})
    async with journal.writing():
        for entry in entries:
            await journal.commit(entry)
    journal.close()


def _entry(key: str, state: Any, **fields: Any) -> JournalEntry:
    raw = {**ROW, "first_party": ROW["first_party"][:-1] + key}
    return JournalEntry(
        key, int(key), int(key) + 1, row_digest(raw), raw, "create", state, **fields
    )


@pytest.mark.parametrize(
    "entry",
    [
        _entry("1", "sending", sent_at=1.0, lookup_at=2.0),  # cut off in flight
        _entry("1", "unknown", sent_at=1.0, error="lookup failed: 503"),  # no lookup concluded
        _entry("1", "unknown", session_uuid=TWIN_A, candidates=(TWIN_A, TWIN_B)),  # named
        _entry("1", "pending"),
        _entry("1", "failed", status=400),
        _entry("1", "ok", session_uuid=TWIN_A),
    ],
    ids=["sending", "no-candidates", "named-by-server", "pending", "failed", "ok"],
)
@pytest.mark.parametrize("choice", [TWIN_A, None], ids=["session", "not-applied"])
async def test_only_an_ambiguous_lookup_can_be_settled(
    tmp_path: Path, entry: JournalEntry, choice: str | None
) -> None:
    """Any row but an unknown create with several candidates and no named session is refused."""
    path = tmp_path / "pairs.journal"
    await _journal_with(path, entry)
    with pytest.raises(JournalError, match="no ambiguous lookup to settle"):
        await settle(path, "1", choice)
    journal = Journal.open(path)
    try:
        assert journal.entry("1") == entry  # unchanged
    finally:
        journal.close()


async def test_a_candidate_another_row_has_is_refused_and_case_does_not_matter(
    tmp_path: Path,
) -> None:
    """A candidate that is another row's session is refused; one typed in upper case is found."""
    path = tmp_path / "pairs.journal"
    ambiguous = _entry("1", "unknown", sent_at=1.0, candidates=(TWIN_A, TWIN_B))
    await _journal_with(path, ambiguous, _entry("2", "ok", session_uuid=TWIN_B))
    with pytest.raises(JournalError, match="another row of the journal has it"):
        await settle(path, "1", TWIN_B)
    settled = await settle(path, "1", TWIN_A.upper())
    assert (settled.state, settled.session_uuid, settled.adopted) == ("ok", TWIN_A, True)
