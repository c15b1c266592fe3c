"""Bad arguments and bad files through the real command line: one line, exit 2, no traceback."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import COMMAND, cli_env, run_cli

from masking_async.cli import main
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a case that sent a request would fail loudly

PAIR = "ref,first_party,second_party\nA,+14155552671,+14155552672\n"
DUPLICATE_KEY = b'{"first_party": "+14155554001", "first_party": "+14155554009"}\n'
Files = dict[str, bytes]
CliMain = Callable[[list[str]], tuple[int, str]]


def _deep(levels: int) -> bytes:
    return b'{"a": ' + b"[" * levels + b"]" * levels + b"}"


# (argv, files to make in the working folder, the text the one line must contain)
CORPUS: list[tuple[list[str], Files, str]] = [
    # options
    (["create", "p.csv", "--rate", "fast"], {"p.csv": PAIR.encode()}, "--rate"),
    (["create", "p.csv", "--rate", "0/s"], {"p.csv": PAIR.encode()}, "--rate"),
    (["create", "p.csv", "--concurrency", "0"], {"p.csv": PAIR.encode()}, "--concurrency"),
    (["create", "p.csv", "--concurrency", "many"], {"p.csv": PAIR.encode()}, "--concurrency"),
    (["create", "p.csv", "--timeout", "soon"], {"p.csv": PAIR.encode()}, "--timeout"),
    (["create", "p.csv", "--timeout", "0"], {"p.csv": PAIR.encode()}, "--timeout"),
    (["create", "p.csv", "--format", "xml"], {"p.csv": PAIR.encode()}, "--format"),
    (["create"], {}, "FILE"),
    (["create", "p.csv", "--bogus"], {"p.csv": PAIR.encode()}, "--bogus"),
    (["teleport"], {}, "teleport"),
    ([], {}, "COMMAND"),
    (["create", "p.csv", "--log-format", "xml"], {"p.csv": PAIR.encode()}, "--log-format"),
    (["create", "p.csv", "--out", "r.txt"], {"p.csv": PAIR.encode()}, "--out r.txt"),
    (["create", "p.csv", "--out", "no/r.jsonl"], {"p.csv": PAIR.encode()}, "folder no"),
    (["create", "p.csv", "--journal", "no/j"], {"p.csv": PAIR.encode()}, "--journal"),
    (["create", "p.csv", "--journal", "p.csv"], {"p.csv": PAIR.encode()}, "not a usable journal"),
    (["create", "p.csv", "--journal", "."], {"p.csv": PAIR.encode()}, "cannot open the journal"),
    (["expire", "--where", "bogus=1"], {}, "--where bogus"),
    (["expire", "--where", "status"], {}, "--where 'status'"),
    (["expire", "--where", "status=sleeping"], {}, "--where status"),
    (["expire", "--where", "created_time__gt=yesterday"], {}, "--where created_time__gt"),
    (["expire", "--where", "first_party=12"], {}, "--where first_party"),
    (["expire"], {}, "--all"),
    (["expire", "p.csv", "--all"], {"p.csv": PAIR.encode()}, "FILE and --all"),
    (["expire", "--all", "--dry-run", "--out", "m.txt"], {}, "--out m.txt"),
    (["expire", "--all", "--journal", "j"], {}, "--journal is for files"),
    (["list", "--created-time--gt", "yesterday"], {}, "--created-time--gt"),
    (["list", "--status", "sleeping"], {}, "--status"),
    (["list", "--duration--gt", "-5"], {}, "--duration--gt"),
    (["list", "--first-party", "12"], {}, "--first-party"),
    (["list", "--out", "x.txt"], {}, "--out x.txt"),
    (["list", "--out", "no/x.csv"], {}, "folder no"),
    (["demo", "--sessions", "0"], {}, "--sessions"),
    (["demo", "--update-share", "2"], {}, "--update-share"),
    (["demo", "--rate", "fast"], {}, "--rate"),
    (["emulator", "--port", "abc"], {}, "--port"),
    # the server root: https://, or http:// to loopback; refused before anything is sent
    (
        ["create", "p.csv", "--base-url", "http://10.255.255.1:9"],
        {"p.csv": PAIR.encode()},
        "--base-url",
    ),
    (["list", "--base-url", "ftp://127.0.0.1:18990"], {}, "--base-url"),
    (["list", "--base-url", "http://[::1"], {}, "--base-url"),
    (["list", "--base-url", "127.0.0.1:18990"], {}, "--base-url"),
    (["list", "--base-url", "http://127.0.0.1:99999"], {}, "--base-url"),
    (["list", "--base-url", "http://127.0.0.1:18990/ x"], {}, "--base-url"),
    (["list", "--base-url", "http://127.0.0.1:18990?a=b"], {}, "--base-url"),
    (["list", "--base-url", "http://127.0.0.1:18990#top"], {}, "--base-url"),
    (["list", "--base-url", "https://bad..host"], {}, "--base-url"),
    (["load", "--base-url", "http://10.255.255.1:9"], {}, "--base-url"),
    # where to listen, and the state file
    (["emulator", "--port", "-1"], {}, "--port"),
    (["emulator", "--port", "65536"], {}, "--port"),
    (["emulator", "--host", "bad..host"], {}, "--host"),
    (["emulator", "--state", "nodir/s.json"], {}, "--state"),
    (["callbacks", "listen", "--port", "70000"], {}, "--port"),
    (["callbacks", "listen", "--host", "bad..host"], {}, "--host"),
    (["callbacks", "listen", "--public-url", "notaurl"], {}, "--public-url"),
    (["callbacks", "listen", "--public-url", "ftp://x"], {}, "--public-url"),
    (["callbacks", "listen", "--auth-token", ""], {}, "--auth-token"),
    (["callbacks", "load", "--rate", "1e12"], {}, "--rate"),
    (["callbacks", "load", "--rate", "nan"], {}, "--rate"),
    # fault rules and phone scripts: a plain sentence naming the key
    (["emulator", "--fault", "kind=bogus"], {}, "fault kind 'bogus' must be one of error, thr"),
    (["emulator", "--fault", "kind="], {}, "fault kind '' must be one of"),
    (["emulator", "--fault", "kind=error,phase=middle"], {}, "fault phase 'middle' must be"),
    (["emulator-ctl", "faults", "--add", "kind=bogus"], {}, "fault kind 'bogus' must be one"),
    (["emulator", "--fault", "kind=error,kind=drop"], {}, "kind is given twice"),
    (["emulator", "phone", "+14155552671", "answer=1,answer=2"], {}, "answer is given twice"),
    (["emulator", "phone", "+14155552671", "busy,answer=1"], {}, "busy rejects the call"),
    # the control plane's root: http(s) only, refused before anything is sent
    (["emulator-ctl", "--url", "ftp://127.0.0.1:18990", "state"], {}, "--url"),
    (
        [
            "emulator",
            "call",
            "--from",
            "+14155552671",
            "--to",
            "+14155552672",
            "--emulator-url",
            "ftp://127.0.0.1:18990",
        ],
        {},
        "--emulator-url",
    ),
    # numbers past the documented ceilings
    (["create", "p.csv", "--rate", "99999999999999999999/s"], {"p.csv": PAIR.encode()}, "--rate"),
    (["list", "--rate", "99999999999999999999/s"], {}, "--rate"),
    (["demo", "--rate", "99999999999999999999/s"], {}, "--rate"),
    (["emulator", "--rate-limit", "99999999999999999999/s"], {}, "--rate-limit"),
    (
        ["create", "p.csv", "--concurrency", "99999999999"],
        {"p.csv": PAIR.encode()},
        "--concurrency",
    ),
    (["create", "p.csv", "--timeout", "0.0000001"], {"p.csv": PAIR.encode()}, "--timeout"),
    (["create", "p.csv", "--timeout", "9" * 400], {"p.csv": PAIR.encode()}, "--timeout"),
    (["load", "--rate", "99999999999999999999/s"], {}, "--rate"),
    (["load", "--stages", "1s:99999999999999999999/s"], {}, "--stages"),
    (["load", "--stages", "9" * 400 + "s:5/s"], {}, "--stages"),
    (["load", "--max-in-flight", "99999999999"], {}, "--max-in-flight"),
    (["load", "--duration", "0"], {}, "--duration"),
    (["load", "--duration", "nan"], {}, "--duration"),
    (["load", "--duration", "inf"], {}, "--duration"),
    (["load", "--timeout", "inf"], {}, "--timeout"),
    (["load", "--timeout", "0.0000001"], {}, "--timeout"),
    (["emulator", "--rate-limit", "fast"], {}, "--rate-limit"),
    (["emulator", "--error-rate", "x"], {}, "--error-rate"),
    # files
    (["create", "missing.csv"], {}, "missing.csv: no such file"),
    (
        ["create", "p.csv", "--strict"],
        {"p.csv": b"first_party,second_party\n123,+14155552671\n"},
        "none sent",
    ),
    (["create", "k.jsonl", "--dry-run"], {"k.jsonl": DUPLICATE_KEY}, "field 'first_party' is"),
    (["create", "q.csv"], {"q.csv": b'a,b\n1,"x\n'}, "line 2: malformed CSV"),
    (["create", "c.csv"], {"c.csv": b"first_party,second_party\n1,2,3\n"}, "line 2: has 3 cells"),
    (["create", "e.csv"], {"e.csv": b""}, "line 1: no header row"),
    (["create", "h.csv"], {"h.csv": b"a,a\n1,2\n"}, "line 1: header has an empty or repeated"),
    (["create", "l.csv"], {"l.csv": b"ref,first_party\nA,\xe9\n"}, "line 2: is not UTF-8"),
    (["create", "big.csv"], {"big.csv": b"ref\n" + b"x" * 200_000 + b"\n"}, "line 2: line is"),
    (["create", "b.json"], {"b.json": b'[\n{"a": 1},\n{"b":'}, "line 3: invalid JSON"),
    (["create", "o.json"], {"o.json": b'{"a": 1}'}, "expected a JSON array"),
    (["create", "e.json"], {"e.json": b"  \n"}, "is empty"),
    (["create", "s.json"], {"s.json": b'[{"a": 1},\n 5]'}, "line 2: record 2: each element"),
    (["create", "t.json"], {"t.json": b'[{"a": 1}]\n]'}, "line 2: unexpected text after"),
    (
        ["create", "d.json"],
        {"d.json": b"[" + _deep(100_000) + b"]"},
        "line 1: record 1: values are",
    ),
    (["create", "d.jsonl"], {"d.jsonl": b'{"a": 1}\n' + _deep(50_000)}, "line 2: values are nest"),
    (["create", "r.jsonl"], {"r.jsonl": b'{"a": 1}\n[1]\n'}, "line 2: each line must be"),
    (["create", "two.jsonl"], {"two.jsonl": b'{"a": 1} {"b": 2}\n'}, "line 1: holds more than"),
    (["create", "s.jsonl"], {"s.jsonl": b'{"a":\n 1}\n'}, "line 1: the JSON object does not"),
    (["create", "j.jsonl"], {"j.jsonl": b'{}\n{}\n{"a" 1}\n'}, "line 3: invalid JSON"),
    (["create", "u.jsonl"], {"u.jsonl": b'{}\n{"a": "\xe9"}\n'}, "line 2: is not UTF-8"),
    (["create", "x.json"], {"x.json": b'[{"a": "' + b"x" * 200_000 + b'"}]'}, "larger than"),
    (["create", "f.txt"], {"f.txt": b"a\n"}, "cannot tell the format"),
    (
        ["expire", "--where", "first_party=+14155554001", "--where", "first_party=+14155554002"],
        {},
        "--where first_party: given twice",
    ),
    (["create", "k.jsonl"], {"k.jsonl": DUPLICATE_KEY}, "line 1: field 'first_party' is repeat"),
    (["create", "k.json"], {"k.json": b'[{},\n{"a": {"b": 1, "b": 2}}]'}, "record 2: field 'b'"),
    (["create", "n.jsonl"], {"n.jsonl": b'{"": 1}\n'}, "line 1: an empty field name is not"),
    (["create", "o.jsonl"], {"o.jsonl": b'{"ref": {"x": 1}}\n'}, "field 'ref' must be a string"),
    (["create", "p.csv", "--out", "dir.jsonl/"], {"p.csv": PAIR.encode()}, "names a folder"),
    # columns, numbers and formats as users have them (issue 18)
    (
        ["create", "s.csv"],
        {"s.csv": b"first_party,second_party,sesion_expiry\n+14155552671,+14155552672,60\n"},
        "column 'sesion_expiry' is not a parameter; did you mean session_expiry?",
    ),
    (["create", "p.csv", "--map", "ref=frist_party"], {"p.csv": PAIR.encode()}, "did you mean"),
    (["create", "p.csv", "--map", "phone"], {"p.csv": PAIR.encode()}, "expected COLUMN=PARAM"),
    (["create", "p.csv", "--map", "nope=ref"], {"p.csv": PAIR.encode()}, "no column 'nope'"),
    (
        ["create", "b.csv"],
        {"b.csv": b"first_party,First Party,second_party\n1,2,3\n"},
        "columns 'first_party' and 'First Party' both mean first_party",
    ),
    (
        ["create", "o.csv"],
        {"o.csv": b"order_id,phone\n1,+14155552671\n"},
        "no first_party column; name one first_party, or add --map 'COLUMN=first_party'",
    ),
    (["create", "p.csv", "--default-region", "ZZ"], {"p.csv": PAIR.encode()}, "--default-region"),
    (["create", "p.csv", "--delimiter", "::"], {"p.csv": PAIR.encode()}, "--delimiter"),
    (["create", "p.jsonl", "--delimiter", ";"], {"p.jsonl": b"{}\n"}, "--delimiter is for CSV"),
    (
        ["create", "n.csv", "--strict"],
        {"n.csv": b"first_party,second_party\n415-555-0102,+14155552672\n"},
        "none sent",
    ),
    (
        ["create", "r.csv", "--strict"],
        {"r.csv": b"first_party,second_party,default_region\n4155550102,4155550103,ZZ\n"},
        "none sent",
    ),
    (["create", "-"], {}, "standard input has no extension to tell its format; add --format"),
    (
        ["create", "-", "--format", "csv", "--journal", "j"],
        {},
        "--journal: standard input (-) cannot be read again",
    ),
    (["create", "p.gz"], {"p.gz": gzip.compress(PAIR.encode())}, "cannot tell the format inside"),
    (
        ["create", "p.bin"],
        {"p.bin": gzip.compress(PAIR.encode())},
        "p.bin is gzip-compressed, recognised by its first bytes",
    ),
    (
        ["create", "cut.csv.gz"],
        {"cut.csv.gz": gzip.compress(PAIR.encode())[:20]},
        "line 1: is gzip-compressed but the data is damaged or cut short",
    ),
    # one filter language: both spellings, relative times (issue 18)
    (["list", "--where", "created_time__gt=5 ago"], {}, "--where created_time__gt"),
    (["list", "--where", "status=active", "--status", "all"], {}, "--status: given twice"),
    (["expire", "--created-time--lt", "now-soon", "--yes"], {}, "--created-time--lt"),
    (["expire", "--status", "active", "--all"], {}, "--where and --all"),
    (["report", "--journal", "j", "--out", "r.txt"], {}, "--out r.txt"),
    (["report", "--journal", "j", "--out", "d.jsonl/"], {}, "names a folder"),
    (["report", "--journal", "nope.j"], {}, "nope.j: no such journal"),
    (["report", "--journal", "e.j"], {"e.j": b""}, "e.j: not a journal"),
    (["resolve", "1", "--journal", "e.j", "--not-applied"], {"e.j": b""}, "e.j: not a journal"),
]


@pytest.fixture
def cli_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CliMain:
    """``main(argv)`` in a scratch folder against a server that nothing listens on."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLIVO_AUTH_ID", DEFAULT_AUTH_ID)
    monkeypatch.setenv("PLIVO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN)
    monkeypatch.setenv("MASKING_ASYNC_BASE_URL", NOWHERE)

    def run(argv: list[str]) -> tuple[int, str]:
        try:
            status = main([*argv])
        except SystemExit as exc:  # argparse's own exit
            status = int(exc.code or 0)
        return status, capsys.readouterr().err

    return run


def test_the_corpus_is_large_enough() -> None:
    """The corpus holds at least 40 bad arguments and bad files."""
    assert len(CORPUS) >= 40


@pytest.mark.parametrize(("argv", "files", "names"), CORPUS, ids=lambda v: str(v)[:40])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    cli_main: CliMain,
    argv: list[str],
    files: Files,
    names: str,
) -> None:
    """Each bad argument or file: exit 2, one line naming the option or line, no traceback.

    Lines before it may only be the row reports of --strict, each naming line and field, and
    notes (columns carried through, say).
    """
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    status, err = cli_main(argv)
    assert status == 2, err
    *reports, last = err.strip().splitlines()
    assert names in last
    assert re.match(r"^masking-async( [\w-]+){0,2}: error: ", last), err
    assert all(re.match(r"^(\S+: line \d+: \w+: |note: )", line) for line in reports), err
    assert "Traceback" not in err
    assert "Attribute(" not in err  # attrs internals never reach the user


@pytest.mark.parametrize(
    "argv",
    [
        ["emulator-ctl", "--url", "http://someone:hunter22@127.0.0.1:9", "state"],
        [
            "emulator",
            "phone",
            "+14155552671",
            "busy",
            "--emulator-url",
            "http://someone:hunter22@127.0.0.1:9",
        ],
        ["create", "p.csv", "--base-url", "https://someone:hunter22@127.0.0.1:9"],
    ],
)
def test_a_url_with_a_password_is_refused_unshown(cli_main: CliMain, argv: list[str]) -> None:
    """A root holding user:password@ is refused in one line that shows neither."""
    status, err = cli_main(argv)
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert "hunter22" not in err
    assert "someone" not in err


def test_a_plain_http_root_off_the_machine_is_refused_by_the_installed_command(
    tmp_path: Path,
) -> None:
    """$MASKING_ASYNC_BASE_URL=http://10.255.255.1:9 (never contacted): exit 2 naming --base-url."""
    done = run_cli("http://10.255.255.1:9", tmp_path, "list")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "argument --base-url: 'http://10.255.255.1:9': plain http:// is only" in done.stderr


def test_load_against_a_server_reads_the_account_from_the_environment(tmp_path: Path) -> None:
    """`load --base-url URL` with PLIVO_AUTH_ID/TOKEN set runs (it used to fail an assertion)."""
    with emulator_process("--rate-limit", "off") as url:
        done = run_cli(url, tmp_path, "load", "--base-url", url, "--requests", "5", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_load_against_a_server_without_an_account_is_one_line(
    cli_main: CliMain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`load --base-url URL` with no account anywhere: exit 2 naming --auth-id."""
    monkeypatch.delenv("PLIVO_AUTH_ID")
    status, err = cli_main(["load", "--base-url", NOWHERE, "--requests", "5"])
    assert status == 2
    assert "--base-url needs --auth-id" in err
    assert len(err.strip().splitlines()) == 1


def test_a_folder_and_a_fifo_are_refused(tmp_path: Path, cli_main: CliMain) -> None:
    """A folder or a FIFO nobody writes is refused at once instead of hanging."""
    (tmp_path / "rows.csv").mkdir()
    os.mkfifo(tmp_path / "pipe.csv")
    assert cli_main(["create", "rows.csv"]) == (
        2,
        "masking-async create: error: rows.csv: is a folder, not a file\n",
    )
    status, err = cli_main(["create", "pipe.csv"])
    assert status == 2
    assert "pipe.csv: is not a regular file" in err
    status, err = cli_main(["list", "--out", "rows.csv"])
    assert status == 2
    assert "--out rows.csv: is a folder" in err


def test_missing_credentials_are_one_line(
    tmp_path: Path,
    cli_main: CliMain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No auth id anywhere: exit 2 and a line saying what to set."""
    monkeypatch.delenv("PLIVO_AUTH_ID")
    (tmp_path / "p.csv").write_text(PAIR)
    status, err = cli_main(["create", "p.csv"])
    assert status == 2
    assert "PLIVO_AUTH_ID" in err
    assert len(err.strip().splitlines()) == 1


def test_port_in_use_is_one_line(cli_main: CliMain) -> None:
    """`emulator --port` on a port already taken: exit 2 naming the port, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, err = cli_main(["emulator", "--port", str(port)])
    assert status == 2
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err
    assert len(err.strip().splitlines()) == 1


def test_a_usage_error_from_the_installed_command(tmp_path: Path) -> None:
    """Through a real process: `--rate fast` is one line on stderr and exit status 2."""
    done = subprocess.run(
        [*COMMAND, "create", "p.csv", "--rate", "fast"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "argument --rate: rate limit 'fast'" in done.stderr


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    """Ctrl-C asks rows in flight to finish; a second Ctrl-C cancels them: exit 130 either way."""
    (tmp_path / "p.csv").write_text(PAIR)
    with emulator_process("--stall-rate", "1", "--stall-seconds", "600") as url:
        process = subprocess.Popen(
            [*COMMAND, "create", "p.csv", "--timeout", "600"],
            cwd=tmp_path,
            env=cli_env(url),
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while not (tmp_path / "p.results.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the results file opens once the row is about to be sent
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        first = process.stderr.readline()
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)
        err = first + rest
    assert process.returncode == 130, err
    assert "stopping; press Ctrl-C again" in err
    assert "stopped at once" in err
    assert "Traceback" not in err


def test_a_full_disk_is_one_line_naming_the_output(tmp_path: Path) -> None:
    """Results or a list written to a full disk (/dev/full): exit 2 and the file named."""
    (tmp_path / "p.csv").write_text(PAIR)
    (tmp_path / "r.jsonl").symlink_to("/dev/full")
    (tmp_path / "all.csv").symlink_to("/dev/full")
    with emulator_process("--rate-limit", "off") as url:
        runs = [
            run_cli(url, tmp_path, "create", "p.csv", "--out", "r.jsonl", "--no-progress"),
            run_cli(url, tmp_path, "list", "--out", "all.csv"),
        ]
    for done, name in zip(runs, ("r.jsonl", "all.csv"), strict=True):
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert f"cannot write {name}" in done.stderr
        assert "no space left on the device" in done.stderr


@pytest.mark.parametrize("command", [["report"], ["resolve", "1", "--not-applied"]])
def test_a_file_that_is_not_a_journal_is_left_as_it_was(
    tmp_path: Path, cli_main: CliMain, command: list[str]
) -> None:
    """report and resolve refuse an empty file or another SQLite database, changing no byte."""
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection, connection:
        connection.execute("CREATE TABLE t (x)")
    (tmp_path / "empty.j").write_bytes(b"")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    for name in before:
        status, err = cli_main([*command, "--journal", name])
        assert (status, err.count("\n")) == (2, 1), err
        assert f"{name}: not a journal" in err
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_journal_resumes_only_its_own_command(tmp_path: Path) -> None:
    """expire, run or update on a create journal: refused up front, exit 2, results untouched.

    And report to a full disk names its --out, as create does.
    """
    (tmp_path / "qq.csv").write_text(PAIR)
    (tmp_path / "full.jsonl").symlink_to("/dev/full")
    with emulator_process("--rate-limit", "off") as url:
        created = run_cli(url, tmp_path, "create", "qq.csv", "--journal", "qq.j", "--no-progress")
        assert created.returncode == 0, created.stderr
        results = (tmp_path / "qq.results.jsonl").read_bytes()
        for command in ("expire", "run", "update"):
            done = run_cli(url, tmp_path, command, "qq.csv", "--journal", "qq.j", "--no-progress")
            assert done.returncode == 2, done.stderr
            assert done.stderr == (
                f"masking-async {command}: error: qq.j records a create run;"
                " run it with create, or use a new journal\n"
            )
        assert (tmp_path / "qq.results.jsonl").read_bytes() == results
        again = run_cli(url, tmp_path, "create", "qq.csv", "--journal", "qq.j", "--no-progress")
        full = run_cli(url, tmp_path, "report", "--journal", "qq.j", "--out", "full.jsonl")
    assert again.returncode == 0, again.stderr
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("\n") == 1, full.stderr
    assert "cannot write full.jsonl" in full.stderr
    assert "no space left on the device" in full.stderr
