"""Help, version, verbosity, log lines and the request timeout, through the real command line."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import COMMAND, run_cli

from masking_async.cli import build_parser
from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"masking-async": parser, **sub.choices}


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    """Each option and argument of each command has help text; a default is shown when set."""
    parser = _subcommands()[name]
    text = parser.format_help()
    assert "``" not in text  # no raw reStructuredText
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        shown = action.default not in (None, False, argparse.SUPPRESS, [])
        if shown and action.option_strings and name != "load":
            help_line = parser._get_formatter()._expand_help(action)
            assert "default" in help_line, f"{name} {action.option_strings} hides its default"


def test_version_and_verbosity_are_documented() -> None:
    """`--version` prints the version; `--help` explains -v and -vv and --log-format."""
    done = subprocess.run(
        [*COMMAND, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("masking-async 0.")
    helped = subprocess.run(
        [*COMMAND, "create", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert "-vv every request (DEBUG)" in " ".join(helped.stdout.split())
    assert "--log-format {text,json}" in helped.stdout
    assert "--timeout SECONDS" in helped.stdout


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def test_logs_mask_phone_numbers_but_not_session_ids(server: str, tmp_path: Path) -> None:
    """-vv logs every request: parties show only 4 digits, session ids stay whole."""
    first, second = next(iter(party_pairs(1, countries=("US",), start=70)))
    (tmp_path / "p.csv").write_text(f"first_party,second_party\n{first},{second}\n")
    made = run_cli(server, tmp_path, "create", "p.csv", "--out", "r.jsonl", "--no-progress")
    assert made.returncode == 0, made.stderr
    uuid = json.loads((tmp_path / "r.jsonl").read_text())["session_uuid"]
    (tmp_path / "u.csv").write_text(f"session_uuid,ring_timeout\n{uuid},30\n")
    updated = run_cli(server, tmp_path, "-vv", "update", "u.csv", "--no-progress")
    assert updated.returncode == 0, updated.stderr
    assert f"/Session/{uuid}/" in updated.stderr
    listed = run_cli(server, tmp_path, "list", "--first-party", first, "-vv")
    assert listed.returncode == 0, listed.stderr
    assert f"first_party=***{first[-4:]}" in listed.stderr
    assert first.removeprefix("+") not in listed.stderr


def test_log_format_json_gives_one_object_per_line(server: str, tmp_path: Path) -> None:
    """--log-format json: every log line on stderr is a JSON object with level and message."""
    listed = run_cli(server, tmp_path, "list", "-vv", "--log-format", "json")
    assert listed.returncode == 0, listed.stderr
    *logs, count = listed.stderr.strip().splitlines()
    assert count == "0 sessions"
    records = [json.loads(line) for line in logs]
    assert records
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["level"] == "DEBUG" and "GET" in r["message"] for r in records)


def test_timeout_bounds_each_request(tmp_path: Path) -> None:
    """--timeout: a server that never answers is given up on, one line, exit 1, not a hang."""
    with emulator_process("--stall-rate", "1", "--stall-seconds", "60") as url:
        done = run_cli(url, tmp_path, "list", "--timeout", "200ms")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("masking-async list: error: ")
    assert "Traceback" not in done.stderr
