"""The batch commands through the real command line, on real files, against an emulator process."""

from __future__ import annotations

import base64
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs

_AUTH = base64.b64encode(f"{DEFAULT_AUTH_ID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off", "--latency", "20ms") as url:
        yield url


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PLIVO_AUTH_ID": DEFAULT_AUTH_ID,
        "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "MASKING_ASYNC_BASE_URL": url,
    }


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "masking_async", *args, "--no-progress", "--rate", "off"],
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _sessions(url: str) -> list[dict[str, Any]]:
    """Every session of the account, read straight from the emulator's API."""
    found, offset = [], 0
    while True:
        request = urllib.request.Request(
            f"{url}/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/?status=all&limit=20&offset={offset}",
            headers={"Authorization": f"Basic {_AUTH}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            page = json.load(answer)["response"]
        found += page["objects"]
        offset += 20
        if offset >= page["meta"]["total_count"]:
            return found


def _pairs_csv(path: Path, count: int, *, start: int = 0, extra: str = "") -> list[tuple[str, str]]:
    pairs = list(party_pairs(count, countries=("US", "GB", "IN"), start=start))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "first_party", "second_party"])
        writer.writerows((f"R{i}", a, b) for i, (a, b) in enumerate(pairs))
        handle.write(extra)
    return pairs


def _results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_create_from_each_format(server: str, tmp_path: Path, fmt: str) -> None:
    """CSV, a JSON array and JSON Lines each create one session per row, with a result per row."""
    pairs = list(party_pairs(6, start=100 + 10 * ["csv", "json", "jsonl"].index(fmt)))
    rows = [{"ref": f"R{i}", "first_party": a, "second_party": b} for i, (a, b) in enumerate(pairs)]
    source = tmp_path / f"pairs.{fmt}"
    if fmt == "csv":
        source.write_text(
            "\ufeffref,first_party,second_party\n"
            + "".join(f"{r['ref']},{r['first_party']},{r['second_party']}\n" for r in rows)
        )
    elif fmt == "json":
        source.write_text(json.dumps(rows, indent=2))
    else:
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = _cli(server, "create", str(source), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    results = _results(tmp_path / "out.jsonl")
    assert [r["ref"] for r in results] == [r["ref"] for r in rows]
    assert all(r["outcome"] == "ok" and r["virtual_number"] for r in results)
    assert len(_sessions(server)) == 6


def test_update_expire_and_op_column(server: str, tmp_path: Path) -> None:
    """A file of mixed operations runs each row's own op, and expire by filter ends the rest."""
    _pairs_csv(tmp_path / "pairs.csv", 4, start=300)
    assert (
        _cli(
            server, "create", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "c.jsonl")
        ).returncode
        == 0
    )
    made = [r["session_uuid"] for r in _results(tmp_path / "c.jsonl")]
    (tmp_path / "ops.jsonl").write_text(
        json.dumps({"op": "update", "session_uuid": made[0], "ring_timeout": 30})
        + "\n"
        + json.dumps({"op": "expire", "session_uuid": made[1], "ref": "gone"})
        + "\n"
    )
    done = _cli(server, "run", str(tmp_path / "ops.jsonl"), "--out", str(tmp_path / "ops.out.csv"))
    assert done.returncode == 0, done.stderr
    with (tmp_path / "ops.out.csv").open() as handle:
        assert [(r["op"], r["outcome"], r["ref"]) for r in csv.DictReader(handle)] == [
            ("update", "ok", ""),
            ("expire", "ok", "gone"),
        ]
    by_id = {s["session_uuid"]: s for s in _sessions(server)}
    assert by_id[made[0]]["ring_timeout"] == 30
    assert by_id[made[1]]["status"] == "expired"
    done = _cli(
        server, "expire", "--where", "status=active", "--yes", "--out", str(tmp_path / "e.jsonl")
    )
    assert done.returncode == 0, done.stderr
    assert len(_results(tmp_path / "e.jsonl")) == 3  # four made, one expired by the run
    assert all(s["status"] == "expired" for s in _sessions(server))


def test_dry_run_reports_every_bad_row_and_sends_nothing(server: str, tmp_path: Path) -> None:
    """--dry-run names line, field and rule of each bad row, exits 1, and sends no request."""
    bad = "X1,+14155550000,+14155550000\nX2,12345,+14155552345\n"
    _pairs_csv(tmp_path / "pairs.csv", 3, start=400, extra=bad)
    done = _cli(server, "create", str(tmp_path / "pairs.csv"), "--dry-run")
    assert done.returncode == 1
    assert "line 5: second_party: must differ from first_party (row 4)" in done.stderr
    assert "line 6: first_party: must be a valid phone number" in done.stderr
    assert "5 rows checked, 2 invalid" in done.stderr
    assert _sessions(server) == []


def test_invalid_rows_fail_without_sending_and_strict_refuses(server: str, tmp_path: Path) -> None:
    """Invalid rows become failed results and go to the failed file; --strict sends nothing."""
    source = tmp_path / "pairs.csv"
    _pairs_csv(source, 3, start=500, extra="X1,+14155550000,+14155550000\n")
    strict = _cli(server, "create", str(source), "--strict")
    assert strict.returncode == 2
    assert "none sent" in strict.stderr
    assert _sessions(server) == []
    done = _cli(server, "create", str(source), "--out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 1
    outcomes = Counter(r["outcome"] for r in _results(tmp_path / "r.jsonl"))
    assert outcomes == {"ok": 3, "failed": 1}
    failed = (tmp_path / "r.failed.csv").read_text().splitlines()
    assert failed == [
        "ref,first_party,second_party,error",
        "X1,+14155550000,+14155550000,second_party: must differ from first_party",
    ]
    assert len(_sessions(server)) == 3


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("quote.csv", b'a,b\n1,"x\n', "line 2: malformed CSV"),
        ("cells.csv", b"first_party,second_party\n1,2,3\n", "line 2: has 3 cells"),
        ("empty.csv", b"", "line 1: no header row"),
        ("latin1.csv", b"ref,first_party\nA,\xe9\n", "line 2: is not UTF-8"),
        ("huge.csv", b"ref\n" + b"x" * 200_000 + b"\n", "line 2: line is longer"),
        ("broken.json", b'[{"a": 1}, {"b":', "line 1: invalid JSON"),
        ("object.json", b'{"a": 1}', "expected a JSON array"),
        ("lines.jsonl", b'{"a": 1}\n[1]\n', "line 2: each line must be a JSON object"),
        ("format.txt", b"a\n", "cannot tell the format"),
    ],
)
def test_malformed_files_are_one_clear_line(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    """A malformed file is an error naming the line, exit 2, no traceback, nothing sent."""
    (tmp_path / name).write_bytes(content)
    done = _cli("http://127.0.0.1:9", "create", str(tmp_path / name))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def _wait_for_results(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} results")


def test_sigkill_then_resume_creates_every_session_exactly_once(tmp_path: Path) -> None:
    """Killed with SIGKILL mid-run and resumed with its journal: each pair exists exactly once."""
    with emulator_process("--rate-limit", "off", "--latency", "60ms", "--jitter", "40ms") as url:
        source, journal, out = (
            tmp_path / "pairs.csv",
            tmp_path / "run.journal",
            tmp_path / "r.jsonl",
        )
        pairs = _pairs_csv(source, 80, start=600)
        command = [
            sys.executable,
            "-m",
            "masking_async",
            "create",
            str(source),
            "--journal",
            str(journal),
            "--out",
            str(out),
            "--concurrency",
            "8",
            "--rate",
            "off",
            "--no-progress",
            "--timeout",  # rows in flight at the kill are looked up after timeout + settle
            "1",
            "--settle",
            "0.5",
        ]
        first = subprocess.Popen(command, env=_env(url), stderr=subprocess.DEVNULL, text=True)
        _wait_for_results(out, 20, first)
        first.kill()  # SIGKILL: no cleanup, rows in flight, journal mid-write
        first.wait()
        assert 0 < len(_sessions(url)) < 80
        resumed = subprocess.run(
            command, env=_env(url), capture_output=True, text=True, timeout=120, check=False
        )
        assert resumed.returncode == 0, resumed.stderr
        results = _results(out)
        assert len(results) == 80
        assert sum(r["resumed"] for r in results) >= 20
        sessions = _sessions(url)
        made = Counter((s["first_party"], s["second_party"]) for s in sessions)
        expected = {(a.removeprefix("+"), b.removeprefix("+")) for a, b in pairs}
        assert set(made) == expected
        assert max(made.values()) == 1  # no session created twice


def test_sigint_stops_cleanly_with_exit_130(tmp_path: Path) -> None:
    """Ctrl-C: no new rows, a summary, the rest written as unprocessed, exit status 130."""
    with emulator_process("--rate-limit", "off", "--latency", "150ms") as url:
        source, out = tmp_path / "pairs.csv", tmp_path / "r.jsonl"
        _pairs_csv(source, 200, start=900)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "masking_async",
                "create",
                str(source),
                "--out",
                str(out),
                "--journal",
                str(tmp_path / "j"),
                "--concurrency",
                "2",
                "--rate",
                "off",
                "--no-progress",
            ],
            env=_env(url),
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_results(out, 4, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr
        done = len(_results(out))
        unprocessed = (tmp_path / "r.unprocessed.csv").read_text().splitlines()
        assert done + len(unprocessed) - 1 == 200  # every row accounted for (less the header)
        assert len(_sessions(url)) == done
