"""Files as users have them, through the real command line (issue 18).

Spreadsheet headers and numbers, columns of the user's own carried to the results, sniffed
delimiters, compressed files and standard input.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from cli_support import COMMAND, cli_env, run_cli

from masking_async import MaskingClient
from masking_async.batch import BatchOptions, expire_matching
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process

ORDERS = Path(__file__).parent / "data" / "orders.csv"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def _e164(text: str) -> str:
    number = phonenumbers.parse(text, "US")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _piped(url: str, cwd: Path, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, *args],
        env=cli_env(url),
        cwd=cwd,
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_a_spreadsheet_export_goes_through_and_joins_back(server: str, tmp_path: Path) -> None:
    """tests/data/orders.csv (500 rows, `First Party`, `415-555-0102`, `+44 20 7946 0958`) goes
    through `create --default-region US` as it is; its results join back by order_id."""
    done = run_cli(
        server,
        tmp_path,
        "create",
        str(ORDERS),
        "--default-region",
        "US",
        "--out",
        "results.csv",
        "--journal",
        "orders.journal",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert "note: columns order_id, customer_name are not API parameters" in done.stderr
    assert "500 of 500 rows: 500 ok" in done.stderr
    with ORDERS.open(newline="") as handle:
        orders = {row["order_id"]: row for row in csv.DictReader(handle)}
    with (tmp_path / "results.csv").open(newline="") as handle:
        results = list(csv.DictReader(handle))
    assert len(results) == 500
    by_order = {row["order_id"]: row for row in results}
    assert by_order.keys() == orders.keys()  # every order once: nothing dropped or doubled
    for order_id, order in orders.items():
        result = by_order[order_id]
        assert result["outcome"] == "ok"
        assert result["customer_name"] == order["customer_name"]  # carried untouched
        assert result["first_party"] == _e164(order["First Party"])  # the number as sent
        assert result["second_party"] == _e164(order["Second Party"])
    assert by_order["A-10000"]["first_party"] == "+442079460000"
    assert not (ORDERS.parent / "orders.results.jsonl").exists()  # only where --out said
    rebuilt = run_cli(
        server, tmp_path, "report", "--journal", "orders.journal", "--out", "rebuilt.csv"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    with (tmp_path / "rebuilt.csv").open(newline="") as handle:
        again = {row["order_id"]: row for row in csv.DictReader(handle)}
    assert {k: (r["session_uuid"], r["first_party"]) for k, r in again.items()} == {
        k: (r["session_uuid"], r["first_party"]) for k, r in by_order.items()
    }


def test_national_numbers_need_a_region(tmp_path: Path) -> None:
    """Without --default-region a national number is refused naming row, field and the fix; a
    formatted number with its country code is read all the same."""
    (tmp_path / "p.csv").write_text(
        "ref,first_party,second_party\nA,+1 (415) 555-0101,+44 20 7946 0958\nB,415-555-0102,"
        "+14155550103\n"
    )
    done = run_cli("http://127.0.0.1:9", tmp_path, "create", "p.csv", "--dry-run")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "p.csv: line 3: first_party: '415-555-0102' has no country code: write it as"
        " +1 415 555 0101, or give --default-region (or a default_region column) to read"
        " national numbers (row 2)"
    )
    assert "1 invalid" in done.stderr


def test_a_default_region_column_and_map(server: str, tmp_path: Path) -> None:
    """--map names a column no rule can match; a default_region column reads each row's
    national numbers in its own country; the results show the numbers as sent."""
    (tmp_path / "p.csv").write_text(
        "Ref,Customer Phone,Driver Phone,Default Region\n"
        "a,020 7946 0111,07700 100111,GB\n"
        "b,(415) 555-0131,415 555 0132,us\n"
    )
    done = run_cli(
        server,
        tmp_path,
        "create",
        "p.csv",
        "--map",
        "Customer Phone=first_party",
        "--map",
        "driver phone=second_party",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in (tmp_path / "p.results.jsonl").read_text().splitlines()]
    sent = {r["ref"]: (r["first_party"], r["second_party"]) for r in results}
    assert sent == {
        "a": ("+442079460111", "+447700100111"),
        "b": ("+14155550131", "+14155550132"),
    }


@pytest.mark.parametrize(
    ("name", "delimiter", "extra"),
    [("semi.csv", ";", []), ("tabs.csv", "\t", []), ("pipes.csv", "|", ["--delimiter", "|"])],
)
def test_the_delimiter_is_sniffed_or_given(
    tmp_path: Path, name: str, delimiter: str, extra: list[str]
) -> None:
    """`;` and tab are sniffed (cells may hold the other delimiters); --delimiter forces one."""
    rows = [["ref", "first_party", "second_party"], ["x,y", "+14155550141", "+14155550142"]]
    (tmp_path / name).write_text("\n".join(delimiter.join(row) for row in rows) + "\n")
    done = run_cli("http://127.0.0.1:9", tmp_path, "create", name, "--dry-run", *extra)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "dry run: 1 rows checked, all valid; nothing was sent\n"


def test_compressed_files_are_read(server: str, tmp_path: Path) -> None:
    """.csv.gz, .jsonl.bz2 and .json.xz are read by their extension; a gzip file with a plain
    name is recognised by its first bytes and said so; the row files are plain."""
    text = "ref,first_party,second_party\nz,+14155550151,+14155550151\n"
    (tmp_path / "p.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "q.jsonl.bz2").write_bytes(
        bz2.compress(b'{"first_party": "+14155550152", "second_party": "+14155550153"}\n')
    )
    (tmp_path / "r.json.xz").write_bytes(
        lzma.compress(b'[{"first_party": "+14155550154", "second_party": "+14155550155"}]')
    )
    (tmp_path / "hidden.csv").write_bytes(gzip.compress(text.encode()))
    gz = run_cli(server, tmp_path, "create", "p.csv.gz", "--no-progress")
    assert gz.returncode == 1, gz.stderr  # the row names one party twice
    assert (tmp_path / "p.results.failed.csv").read_text().startswith("ref,first_party,")
    for name in ("q.jsonl.bz2", "r.json.xz"):
        done = run_cli(server, tmp_path, "create", name, "--no-progress")
        assert done.returncode == 0, done.stderr
    hidden = run_cli(server, tmp_path, "create", "hidden.csv", "--dry-run")
    assert hidden.stderr.splitlines()[0] == (
        "note: hidden.csv is gzip-compressed (recognised by its first bytes); reading it"
    )


def test_standard_input_is_read_once_without_a_journal(server: str, tmp_path: Path) -> None:
    """`cat pairs.csv | create - --format csv` runs; the summary says no journal was kept."""
    data = b"ref,first_party,second_party\ns,+14155550161,+14155550162\n"
    done = _piped(server, tmp_path, data, "create", "-", "--format", "csv", "--no-progress")
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert "1 of 1 rows: 1 ok" in err
    assert err.splitlines()[-1].startswith("no journal: standard input cannot be read again")
    result = json.loads((tmp_path / "stdin.results.jsonl").read_text())
    assert result["ref"] == "s"
    assert result["outcome"] == "ok"
    gzipped = _piped(
        server, tmp_path, gzip.compress(data), "create", "-", "--format", "csv", "--dry-run"
    )
    assert gzipped.returncode == 0, gzipped.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rows_from_standard_input_stream_in_flat_memory(tmp_path: Path) -> None:
    """Dry runs of 100,000 and 200,000 rows through standard input peak within 10 MB of each
    other: past the bounded caches of parsed numbers (65,536 each), nothing grows with the input."""

    def peak_kb(rows: int) -> int:
        script = (
            "import sys\n"
            "out = sys.stdout\n"
            "out.write('ref,first_party,second_party\\n')\n"
            f"for i in range({rows}):\n"
            "    out.write(f'{i},+1415{2000000 + i},+1415{3000000 + i}\\n')\n"
        )
        measure = (
            "import resource, subprocess, sys;"
            "done = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True, text=True);"
            "sys.stderr.write(done.stderr);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        with subprocess.Popen([COMMAND[0], "-c", script], stdout=subprocess.PIPE) as producer:
            done = subprocess.run(
                [
                    COMMAND[0],
                    "-c",
                    measure,
                    *COMMAND,
                    "create",
                    "-",
                    "--format",
                    "csv",
                    "--dry-run",
                ],
                stdin=producer.stdout,
                capture_output=True,
                text=True,
                timeout=500,
                check=False,
                cwd=tmp_path,
            )
        assert f"dry run: {rows} rows checked, all valid" in done.stderr, done.stderr
        return int(done.stdout)

    assert peak_kb(200_000) - peak_kb(100_000) < 10 * 1024


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["expire", "--where", "status=active", "--dry-run"],
        ["create", "p.csv", "--no-progress"],
    ],
)
def test_a_refused_token_exits_3_on_every_command(
    server: str, tmp_path: Path, command: list[str]
) -> None:
    """The same cause, the same status: credentials the server refuses are exit 3 everywhere."""
    (tmp_path / "p.csv").write_text("first_party,second_party\n+14155550171,+14155550172\n")
    done = subprocess.run(
        [*COMMAND, *command],
        env={**cli_env(server), "PLIVO_AUTH_TOKEN": "wrong"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr


async def test_expire_matching_writes_files_only_where_told(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`expire_matching` from Python leaves nothing in the working folder without `out`."""
    monkeypatch.chdir(tmp_path)
    async with MaskingClient(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=server) as client:
        made = await client.create_session(
            {"first_party": "+14155550181", "second_party": "+14155550182"}
        )
        summary = await expire_matching(
            {"first_party": "+14155550181", "status": "active"},
            client=client,
            options=BatchOptions(progress=False),
        )
    assert summary.outcomes["ok"] == 1
    assert made.session_uuid
    assert os.listdir(tmp_path) == []


def test_one_filter_language_with_relative_times(server: str, tmp_path: Path) -> None:
    """list and expire take --where NAME=VALUE and --NAME VALUE alike; `1h ago`, `-2d` and
    `now-30m` are read relative to now and printed back as the UTC time they resolved to."""
    (tmp_path / "p.csv").write_text("first_party,second_party\n+14155550191,+14155550192\n")
    made = run_cli(server, tmp_path, "create", "p.csv", "--no-progress")
    assert made.returncode == 0, made.stderr
    party = "first_party=+14155550191"
    listed = run_cli(
        server, tmp_path, "list", "--where", party, "--where", "created_time__gt=1h ago"
    )
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1
    note = listed.stderr.splitlines()[0]
    assert re.fullmatch(r"note: created_time__gt 1h ago = \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", note)
    before = run_cli(
        server, tmp_path, "list", "--first-party", "+14155550191", "--where", "created-time--lt=-2d"
    )
    assert before.returncode == 0, before.stderr
    assert before.stdout == ""  # made just now, not before two days ago
    for spelling in (["--status", "active"], ["--where", "status=active"]):
        dry = run_cli(
            server,
            tmp_path,
            "expire",
            "--first-party=+14155550191",
            *spelling,
            "--created-time--lt=now-0m",
            "--dry-run",
            "--out",
            "m.csv",
            "--no-progress",
        )
        assert dry.returncode == 0, dry.stderr
        assert "dry run: 1 session match" in dry.stderr
        assert "note: created_time__lt now-0m = " in dry.stderr


def test_one_name_for_the_emulator_url_before_or_after_the_action(server: str) -> None:
    """--emulator-url (and its old spelling --url) works on emulator-ctl and emulator phone,
    before the action or after it."""
    runs = [
        ["emulator-ctl", "--emulator-url", server, "clock"],
        ["emulator-ctl", "clock", "--emulator-url", server],
        ["emulator-ctl", "--url", server, "clock"],
        ["emulator-ctl", "clock", "--url", server],
        ["emulator", "--emulator-url", server, "phone", "+14155550199", "busy"],
        ["emulator", "phone", "+14155550199", "busy", "--emulator-url", server],
    ]
    for argv in runs:
        done = subprocess.run(
            [*COMMAND, *argv], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (argv, done.stderr)
        assert json.loads(done.stdout)


def test_a_create_files_own_status_column_is_carried(tmp_path: Path) -> None:
    """`status` or `amount` in a create file are the user's own (an order's), not errors; in
    an expire file `status` is a session attribute `list` wrote, set aside as before."""
    (tmp_path / "p.csv").write_text(
        "status,amount,first_party,second_party\npaid,12.50,+14155550201,+14155550202\n"
    )
    done = run_cli("http://127.0.0.1:9", tmp_path, "create", "p.csv", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "note: columns status, amount are not API parameters" in done.stderr


def test_json_keys_are_matched_as_headers_are(tmp_path: Path) -> None:
    """JSON Lines keys match as CSV headers do; a misspelt key the first record did not have
    fails its own row with the name it probably meant; the others' own keys are carried."""
    rows = [
        {"Order Id": 1, "First Party": "+1 415 555 0211", "Second Party": "+14155550212"},
        {"First Party": "+14155550213", "Second Party": "+14155550214", "sesion_expiry": 90},
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = run_cli("http://127.0.0.1:9", tmp_path, "create", "p.jsonl", "--dry-run")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "note: column Order Id is not an API parameter; carried through to the results untouched",
        "p.jsonl: line 2: sesion_expiry: is not a parameter; did you mean session_expiry? (row 2)",
        "dry run: 2 rows checked, 1 invalid; nothing was sent",
    ]
