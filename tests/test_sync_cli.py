"""``masking-async sync`` through the real command line against an emulator process."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs
from masking_async.rules import normalize_party
from tests.cli_support import COMMAND, cli_env, run_cli
from tests.test_batch_cli import _sessions

QUICK = ("--no-progress", "--rate", "off", "--timeout", "2", "--settle", "0.5")
Pair = tuple[str, str]


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(row + "\n" for row in rows))
    return path


def _active(url: str) -> dict[Pair, list[dict[str, Any]]]:
    found: dict[Pair, list[dict[str, Any]]] = {}
    for session in _sessions(url):
        if session["status"] != "expired":  # in-progress: active, a call going
            pair = (
                normalize_party(session["first_party"]),
                normalize_party(session["second_party"]),
            )
            found.setdefault(pair, []).append(session)
    return found


def _setup(url: str, folder: Path, pairs: list[Pair], *extra: str) -> None:
    """Make the server hold one active session per pair (created by the real command)."""
    source = _csv(
        folder / "current.csv", "first_party,second_party", [f"{a},{b}" for a, b in pairs]
    )
    done = run_cli(url, folder, "create", str(source), "--no-journal", *QUICK, *extra)
    assert done.returncode == 0, done.stderr


def test_sync_makes_the_server_match_the_file(server: str, tmp_path: Path) -> None:
    """Create, update, prune, replace and dedupe: applied once, then a dry run has no changes."""
    pairs = list(party_pairs(40, countries=("US", "GB"), start=3000))
    _setup(server, tmp_path, pairs[:30])
    _setup(server, tmp_path, pairs[:2])  # two pairs with two active sessions each
    rows = []
    for i, (a, b) in enumerate(pairs[5:40]):  # 0-4 pruned; 5-29 kept; 30-39 created
        record = "true" if i < 5 else ""  # 5 updates
        fixed = "true" if i in (5, 6) else ""  # not updatable: replaced
        rows.append(f"{a},{b},{record},{fixed}")
    desired = _csv(
        tmp_path / "desired.csv",
        "first_party,second_party,record,initiate_call_to_first_party",
        rows,
    )

    plan = run_cli(
        server, tmp_path, "sync", "desired.csv", "--prune", "--dry-run", "--detailed-exit-code"
    )
    assert plan.returncode == 2, plan.stderr
    assert "+ 10 to create, ~ 5 to update (record: false -> true)" in plan.stderr
    assert "- 7 to expire (with --prune)" in plan.stderr
    assert "2 held (with --replace)" in plan.stderr
    assert "2 pairs with several active sessions" in plan.stderr
    planned = [
        json.loads(line) for line in (tmp_path / "desired.csv.plan.jsonl").read_text().splitlines()
    ]
    assert Counter(row["op"] for row in planned) == {"create": 10, "update": 5, "expire": 7}

    refused = run_cli(server, tmp_path, "sync", "desired.csv", "--prune", *QUICK)
    assert refused.returncode == 2, refused.stderr
    assert "refusing to expire 7 sessions without confirmation; add --yes" in refused.stderr
    assert len(_sessions(server)) == 32  # nothing was sent

    flags = ("--prune", "--replace", "--dedupe", "--yes")
    applied = run_cli(server, tmp_path, "sync", str(desired), *flags, *QUICK)
    assert applied.returncode == 0, applied.stderr
    again = run_cli(
        server, tmp_path, "sync", "desired.csv", *flags, "--dry-run", "--detailed-exit-code"
    )
    assert again.returncode == 0, again.stderr
    assert "35 unchanged" in again.stderr
    active = _active(server)
    assert set(active) == set(pairs[5:40])
    assert all(len(sessions) == 1 for sessions in active.values())
    assert all(active[pair][0]["record"] in (True, "true") for pair in pairs[5:10])


def test_a_replace_is_held_without_replace(server: str, tmp_path: Path) -> None:
    """A drift no update can fix: without --replace the plan holds it (exit 1, said why), the
    session is left as it is; a dry run still counts it as a change (exit 2)."""
    ((a, b),) = party_pairs(1, start=3700)
    _setup(server, tmp_path, [(a, b)])
    before = _active(server)
    _csv(
        tmp_path / "want.csv",
        "first_party,second_party,initiate_call_to_first_party",
        [f"{a},{b},true"],
    )
    plan = run_cli(server, tmp_path, "sync", "want.csv", "--dry-run", "--detailed-exit-code")
    assert plan.returncode == 2, plan.stderr
    done = run_cli(server, tmp_path, "sync", "want.csv", *QUICK)
    assert done.returncode == 1, done.stderr
    assert "--replace expires and creates them again" in done.stderr
    assert _active(server) == before


def test_a_second_sync_sends_nothing(server: str, tmp_path: Path) -> None:
    """Applied twice: the second lists, finds nothing to change, and exits 0."""
    pairs = list(party_pairs(6, start=3100))
    _csv(tmp_path / "want.csv", "first_party,second_party", [f"{a},{b}" for a, b in pairs])
    assert run_cli(server, tmp_path, "sync", "want.csv", *QUICK).returncode == 0
    second = run_cli(server, tmp_path, "sync", "want.csv", *QUICK)
    assert second.returncode == 0, second.stderr
    assert "nothing to change" in second.stderr
    assert len(_sessions(server)) == 6


def test_where_narrows_both_the_listing_and_the_file(server: str, tmp_path: Path) -> None:
    """--where first_party=X: only X's sessions are compared or pruned, only X's rows planned."""
    first = next(iter(party_pairs(1, countries=("US",), start=3500)))[0]
    mine = [(first, f"+1212555{i:04d}") for i in range(3)]
    others = list(party_pairs(3, countries=("GB",), start=3600))
    _setup(server, tmp_path, mine + others)
    rows = [f"{a},{b}" for a, b in [*mine[:2], *others[:1]]]  # mine[2] pruned; others left alone
    _csv(tmp_path / "want.csv", "first_party,second_party", rows)
    done = run_cli(
        server,
        tmp_path,
        "sync",
        "want.csv",
        "--where",
        f"first_party={first}",
        "--prune",
        "--yes",
        *QUICK,
    )
    assert done.returncode == 0, done.stderr
    assert "1 row of want.csv is outside it" in done.stderr
    assert "- 1 to expire (with --prune)" in done.stderr
    assert set(_active(server)) == {*mine[:2], *others}


def test_where_refuses_a_filter_the_file_cannot_be_judged_by(tmp_path: Path) -> None:
    """--where created_time__gte=...: refused, one line (it would hide sessions sync must see)."""
    _csv(tmp_path / "want.csv", "first_party,second_party", ["+14155550100,+14155550101"])
    done = run_cli(
        "http://127.0.0.1:9",
        tmp_path,
        "sync",
        "want.csv",
        "--where",
        "created_time__gte=2026-01-01 00:00",
    )
    assert done.returncode == 2
    assert "sync narrows only by first_party, second_party, subaccount" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (["+14155550100,+14155550101", "+14155550100,+14155550101"], "line 3: the pair"),
        (["+14155550100,not-a-number"], "line 2: second_party"),
        (["+14155550100,+14155550101,x"], "line 2: record: must be true or false"),
    ],
)
def test_a_bad_desired_file_is_refused_before_anything_is_listed(
    tmp_path: Path, rows: list[str], says: str
) -> None:
    """Invalid or repeated rows: exit 2, each named by line, nothing listed or sent."""
    header = "first_party,second_party" + (",record" if rows[0].count(",") == 2 else "")
    _csv(tmp_path / "bad.csv", header, rows)
    done = run_cli("http://127.0.0.1:9", tmp_path, "sync", "bad.csv", *QUICK)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plan_over_the_desired_file_is_refused(tmp_path: Path) -> None:
    """--plan naming DESIRED_FILE: exit 2, one line, the file intact."""
    source = _csv(tmp_path / "want.jsonl", "", [])
    source.write_text('{"first_party": "+14155550100", "second_party": "+14155550101"}\n')
    before = source.read_text()
    done = run_cli(
        "http://127.0.0.1:9", tmp_path, "sync", "want.jsonl", "--dry-run", "--plan", "want.jsonl"
    )
    assert done.returncode == 2
    assert "writing it would destroy it" in done.stderr
    assert source.read_text() == before


def test_detailed_exit_code_needs_dry_run(tmp_path: Path) -> None:
    """--detailed-exit-code without --dry-run: exit 2, one line."""
    _csv(tmp_path / "want.csv", "first_party,second_party", ["+14155550100,+14155550101"])
    done = run_cli("http://127.0.0.1:9", tmp_path, "sync", "want.csv", "--detailed-exit-code")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_kill_9_mid_sync_then_the_same_command_reaches_the_same_end(tmp_path: Path) -> None:
    """kill -9 in the middle of applying, then the same command until it exits 0: the server
    matches the file, and no create was applied twice (every pair ever had one new session)."""
    pairs = list(party_pairs(300, countries=("US", "GB"), start=3200))
    with emulator_process("--rate-limit", "off", "--latency", "10ms") as url:
        _setup(url, tmp_path, pairs[:200])
        rows = [f"{a},{b},{'true' if i < 50 else ''}" for i, (a, b) in enumerate(pairs[50:])]
        _csv(tmp_path / "want.csv", "first_party,second_party,record", rows)
        command = [*COMMAND, "sync", "want.csv", "--prune", "--yes", *QUICK, "--rate", "100/s"]
        victim = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=cli_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(random.Random(9).uniform(1.0, 1.8))  # start-up, listing, then applying
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert (tmp_path / "want.csv.sync.journal").exists()
        reruns = []
        for _ in range(5):
            done = subprocess.run(
                command,
                cwd=tmp_path,
                env=cli_env(url),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            reruns.append(done.stderr)
            if done.returncode == 0:
                break
            assert done.returncode in (1, 4), done.stderr
        assert done.returncode == 0, done.stderr
        assert "finishing the plan an earlier sync left unfinished" in reruns[0], reruns[0]
        check = run_cli(
            url, tmp_path, "sync", "want.csv", "--prune", "--dry-run", "--detailed-exit-code"
        )
        assert check.returncode == 0, check.stderr
        every = Counter(
            (normalize_party(s["first_party"]), normalize_party(s["second_party"]))
            for s in _sessions(url)
        )
        active = _active(url)
    assert set(active) == set(pairs[50:])
    assert all(len(s) == 1 for s in active.values())
    assert all(s[0]["record"] in (True, "true") for p, s in active.items() if p in pairs[50:100])
    assert set(every.values()) == {1}  # no pair ever got a second session
