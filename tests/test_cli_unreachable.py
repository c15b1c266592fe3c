"""Through the real command line: a server that cannot be reached, a stop, and what progress says.

A typo in the port stops the run as unable to reach the server (exit 6, one line naming the URL
and the cause), every row unprocessed, since nothing left the machine; every command says the
same sentence. A Ctrl-C while the server stalls every answer leaves every input row in the
unprocessed or the unresolved file. The figures the progress line and the summary show are the
emulator's own count of the answers it sent.
"""

from __future__ import annotations

import csv
import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from cli_support import COMMAND, cli_env

from masking_async.emulator.process import emulator_process
from masking_async.exit_status import EXIT_INTERRUPTED, EXIT_UNREACHABLE
from masking_async.phones import party_pairs


def _dead_url() -> str:
    """A loopback port where nothing listens (taken, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _csv(path: Path, count: int, start: int) -> None:
    pairs = party_pairs(count, start=start)
    path.write_text("first_party,second_party\n" + "".join(f"{a},{b}\n" for a, b in pairs))


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _log(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/emulator/requests?limit=100000", timeout=10) as answer:
        return list(json.load(answer)["requests"])


def test_nothing_listening_ends_the_run_with_every_row_unprocessed(tmp_path: Path) -> None:
    """Default options, a port where nothing listens: exit 6 within 40 s, the cause in one line,
    every row unprocessed (none unresolved: no request ever left)."""
    source, url = tmp_path / "pairs.csv", _dead_url()
    _csv(source, 20, start=9500)
    began = time.monotonic()
    done = subprocess.run(
        [*COMMAND, "create", str(source), "--no-progress"],
        env=cli_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - began < 40
    assert done.returncode == EXIT_UNREACHABLE, done.stderr
    assert f"stopped: cannot connect to {url}: connection refused\n" in done.stderr
    assert "Traceback" not in done.stderr
    assert "0 of 20 rows: 0 ok, 0 failed, 0 unresolved; 20 unprocessed" in done.stderr
    unprocessed = _rows(tmp_path / "pairs.results.unprocessed.csv")
    assert len(unprocessed) == 20
    assert not (tmp_path / "pairs.results.unresolved.csv").exists()


def test_every_command_names_an_unreachable_server_the_same_way(tmp_path: Path) -> None:
    """``list`` and ``expire --where`` say the same sentence, with the same exit status."""
    url = _dead_url()
    for args in (["list"], ["expire", "--where", "status=active", "--dry-run"]):
        done = subprocess.run(
            [*COMMAND, *args],
            env=cli_env(url),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == EXIT_UNREACHABLE, done.stderr
        assert done.stderr.splitlines()[-1].endswith(
            f"error: cannot connect to {url}: connection refused"
        ), done.stderr
        assert "ClientConnectorError" not in done.stderr


def test_ctrl_c_against_a_stalled_server_accounts_for_every_row(tmp_path: Path) -> None:
    """Every answer stalled, 40 rows, 4 at a time, Ctrl-C: the 4 in flight are unresolved and
    the 36 others unprocessed, whether they were read yet or not; the counts add up."""
    source = tmp_path / "pairs.csv"
    _csv(source, 40, start=9600)
    with emulator_process("--rate-limit", "off", "--stall-rate", "1.0") as url:
        process = subprocess.Popen(
            [*COMMAND, "create", str(source), "--concurrency", "4", "--no-progress"],
            env=cli_env(url),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while len(_log(url)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "4 of 40 rows: 0 ok, 0 failed, 4 unresolved; 36 unprocessed" in stderr
    unresolved = _rows(tmp_path / "pairs.results.unresolved.csv")
    unprocessed = _rows(tmp_path / "pairs.results.unprocessed.csv")
    assert len(unresolved) == 4
    assert len(unprocessed) == 36
    parties = {r["first_party"] for r in unresolved + unprocessed}
    assert parties == {r["first_party"] for r in _rows(source)}


def test_progress_and_summary_count_the_answers_the_server_sent(tmp_path: Path) -> None:
    """At 10 requests a second, with answers lost after the change: the progress line's answers
    per second and the summary's count are what the emulator's request log saw."""
    source = tmp_path / "pairs.csv"
    _csv(source, 70, start=9700)
    drop = "kind=drop,operation=create,phase=after,probability=0.1"
    with emulator_process("--rate-limit", "off", "--seed", "3", "--fault", drop) as url:
        done = subprocess.run(
            [*COMMAND, "create", str(source), "--rate", "10/s", "--settle", "0.5"],
            env=cli_env(url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        log = _log(url)
    assert done.returncode == 0, done.stderr
    answered = [entry for entry in log if entry["status"]]
    assert len(answered) < len(log)  # some answers were lost
    summary = re.search(
        r"^answers: (\d+) \(([\d.]+)/s\); (\d+) requests got none$", done.stderr, re.M
    )
    assert summary is not None, done.stderr
    assert int(summary.group(1)) == len(answered)
    assert int(summary.group(3)) == len(log) - len(answered)
    first = re.search(r"^\[5s\] .*answers ([\d.]+)/s", done.stderr, re.M)
    assert first is not None, done.stderr
    start = min(entry["at"] for entry in log)
    early = [e for e in answered if e["at"] - start < 5]
    assert abs(float(first.group(1)) - len(early) / 5) <= 2.5
