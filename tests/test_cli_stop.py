"""Stopping a command (SIGTERM, or the first Ctrl-C): it ends soon, sends nothing new, and says
truly where each row stands."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from cli_support import COMMAND, cli_env
from test_batch_reproductions import _sessions

from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs


def test_sigterm_stops_a_list_that_finds_nothing_for_a_long_time(tmp_path: Path) -> None:
    """A listing of thousands of empty time windows stops within seconds of SIGTERM (130)."""
    with emulator_process("--rate-limit", "off") as url:
        every_window = ("--created-time--gt", "1970-01-01", "--created-time--lt", "9999-12-31")
        process = subprocess.Popen(
            [*COMMAND, "list", *every_window, "--rate", "off", "--out", "all.jsonl"],
            cwd=tmp_path,
            env=cli_env(url),
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "Traceback" not in err


def test_ctrl_c_sends_nothing_more_and_rows_never_sent_are_unprocessed(tmp_path: Path) -> None:
    """At 2 rows/s, Ctrl-C: rows queued for a rate token never leave and are unprocessed, not
    unresolved; every row that did leave is ok; the resume sends each remaining row once."""
    pairs = list(party_pairs(12, start=9400))
    (tmp_path / "p.csv").write_text(
        "first_party,second_party\n" + "".join(f"{a},{b}\n" for a, b in pairs)
    )
    command = [*COMMAND, "create", "p.csv", "--journal", "p.journal", "--no-progress"]
    with emulator_process("--rate-limit", "off") as url:
        process = subprocess.Popen(
            [*command, "--rate", "2/1s", "--concurrency", "8"],
            cwd=tmp_path,
            env=cli_env(url),
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.5)  # a few rows sent, the others queued in the limiter
        process.send_signal(signal.SIGINT)
        at_signal = len(_sessions(url))
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert len(_sessions(url)) <= at_signal + 1  # at most the one leaving as we signalled
        results = [json.loads(x) for x in (tmp_path / "p.results.jsonl").read_text().splitlines()]
        assert {r["outcome"] for r in results} == {"ok"}
        assert len(results) == len(_sessions(url)) < len(pairs)
        assert not (tmp_path / "p.results.unresolved.csv").exists()
        unprocessed = (tmp_path / "p.results.unprocessed.csv").read_text().splitlines()
        assert len(unprocessed) - 1 == len(pairs) - len(results)  # a header, then the rows
        resumed = subprocess.run(
            [*command, "--rate", "off"],
            cwd=tmp_path,
            env=cli_env(url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert len(_sessions(url)) == len(pairs)
