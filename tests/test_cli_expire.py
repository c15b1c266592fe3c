"""Expire by filter through the real command line: preview, confirmation, --yes and --all."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import COMMAND, cli_env, run_cli

from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def _cli(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(url, cwd, *args, *(["--no-progress"] if args[0] != "list" else []))


def _make(url: str, cwd: Path, count: int, start: int) -> list[str]:
    """Create ``count`` sessions through the CLI; their ids."""
    pairs = party_pairs(count, countries=("US",), start=start)
    (cwd / "pairs.csv").write_text(
        "first_party,second_party\n" + "".join(f"{a},{b}\n" for a, b in pairs)
    )
    done = _cli(url, cwd, "create", "pairs.csv", "--out", "made.jsonl")
    assert done.returncode == 0, done.stderr
    return [
        json.loads(line)["session_uuid"] for line in (cwd / "made.jsonl").read_text().splitlines()
    ]


def _statuses(url: str, cwd: Path) -> dict[str, str]:
    done = _cli(url, cwd, "list", "--status", "all")
    assert done.returncode == 0, done.stderr
    return {s["session_uuid"]: s["status"] for s in map(json.loads, done.stdout.splitlines())}


def test_dry_run_counts_and_writes_the_matches(server: str, tmp_path: Path) -> None:
    """`expire --where ... --dry-run` prints the count, writes the list, expires nothing."""
    made = _make(server, tmp_path, 3, start=10)
    done = _cli(
        server, tmp_path, "expire", "--where", "status=active", "--dry-run", "--out", "m.csv"
    )
    assert done.returncode == 0, done.stderr
    assert "dry run: 3 sessions match status=active; list in m.csv; nothing was expired" in (
        done.stderr
    )
    with (tmp_path / "m.csv").open() as handle:
        assert sorted(row["session_uuid"] for row in csv.DictReader(handle)) == sorted(made)
    assert set(_statuses(server, tmp_path).values()) == {"active"}


def test_without_a_terminal_it_refuses_unless_yes(server: str, tmp_path: Path) -> None:
    """No terminal to ask on: exit 2 and nothing expired; with --yes every match is expired."""
    made = _make(server, tmp_path, 2, start=20)
    refused = _cli(server, tmp_path, "expire", "--where", "status=active")
    assert refused.returncode == 2
    assert "2 sessions match status=active" in refused.stderr
    assert "add --yes" in refused.stderr
    assert set(_statuses(server, tmp_path).values()) == {"active"}
    assert not (tmp_path / "expired.matches.csv").exists()  # nothing written before a yes
    assert not (tmp_path / "expired.results.jsonl").exists()
    done = _cli(server, tmp_path, "expire", "--where", "status=active", "--yes")
    assert done.returncode == 0, done.stderr
    assert _statuses(server, tmp_path) == dict.fromkeys(made, "expired")
    results = [
        json.loads(line) for line in (tmp_path / "expired.results.jsonl").read_text().splitlines()
    ]
    assert sorted(r["session_uuid"] for r in results) == sorted(made)


def test_no_filter_needs_all(server: str, tmp_path: Path) -> None:
    """`expire` alone is refused; `expire --all --yes` expires every active session."""
    made = _make(server, tmp_path, 2, start=30)
    refused = _cli(server, tmp_path, "expire")
    assert refused.returncode == 2
    assert "--all" in refused.stderr
    done = _cli(server, tmp_path, "expire", "--all", "--yes", "--out", "all.csv")
    assert done.returncode == 0, done.stderr
    assert _statuses(server, tmp_path) == dict.fromkeys(made, "expired")


def _on_terminal(url: str, cwd: Path, answer: str, *args: str) -> tuple[int, str]:
    """Run with a pseudo-terminal as stdin, answer the prompt; exit status and all output."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [*COMMAND, *args, "--no-progress"],
            env=cli_env(url),
            cwd=cwd,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.write(leader, answer.encode() + b"\n")
        output, _ = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, output


def test_on_a_terminal_it_shows_count_and_filters_and_asks(server: str, tmp_path: Path) -> None:
    """A terminal is asked: "no" expires nothing (exit 2), "yes" expires the matches."""
    made = _make(server, tmp_path, 2, start=40)
    first = made[0]
    other = _statuses(server, tmp_path)
    party = next(
        json.loads(line)["first_party"]
        for line in _cli(server, tmp_path, "list").stdout.splitlines()
        if json.loads(line)["session_uuid"] == first
    )
    status, output = _on_terminal(
        server, tmp_path, "no", "expire", "--where", f"first_party={party}"
    )
    assert status == 2
    assert f"1 session match first_party={party}, status=active" in output
    assert "Expire 1 session? Type yes to go on:" in output
    assert _statuses(server, tmp_path) == other
    status, output = _on_terminal(
        server, tmp_path, "yes", "expire", "--where", f"first_party={party}"
    )
    assert status == 0, output
    assert _statuses(server, tmp_path) == {**other, first: "expired"}
