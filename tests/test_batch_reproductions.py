"""Issue 8's fourteen reproductions, each through the real command line or the Python API."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cli_support import COMMAND, cli_env

from masking_async import ClientOptions, MaskingClient, RateLimit, RetryPolicy, Timeouts
from masking_async.batch import BatchOptions, run_batch
from masking_async.client import AiohttpTransport, Response
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SystemClock,
)
from masking_async.emulator.faults import FaultRule
from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs

_AUTH = base64.b64encode(f"{DEFAULT_AUTH_ID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()
FAST = ClientOptions(
    rate_limit=RateLimit.off(),
    retry=RetryPolicy(initial=0.01, maximum=0.05),
    timeouts=Timeouts(total=0.5, connect=0.5),
    adopt_settle=0.3,
)
QUICK = ("--rate", "off", "--no-progress", "--timeout", "0.5", "--settle", "0.3")


# -- helpers ----------------------------------------------------------------------------------


def _cli(url: str, *args: str, token: str = DEFAULT_AUTH_TOKEN) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(url), "PLIVO_AUTH_TOKEN": token}
    return subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _get(url: str, path: str) -> Any:
    request = urllib.request.Request(url + path, headers={"Authorization": f"Basic {_AUTH}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _sessions(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = _get(
            url,
            f"/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/?limit=20&offset={len(found)}",
        )["response"]
        found += page["objects"]
        if len(found) >= page["meta"]["total_count"] or not page["objects"]:
            return found


def _log(url: str) -> list[dict[str, Any]]:
    return list(_get(url, "/emulator/requests?limit=100000")["requests"])


def _csv(path: Path, count: int, start: int, **extra: str) -> list[tuple[str, str]]:
    pairs = list(party_pairs(count, start=start))
    names = ["first_party", "second_party", *extra]
    path.write_text(
        ",".join(names) + "\n" + "".join(",".join([a, b, *extra.values()]) + "\n" for a, b in pairs)
    )
    return pairs


def _results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


def _fault(url: str, **rule: Any) -> None:
    request = urllib.request.Request(
        url + "/emulator/faults",
        data=json.dumps(rule).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _clear_faults(url: str) -> None:
    request = urllib.request.Request(url + "/emulator/faults", method="DELETE")
    with urllib.request.urlopen(request, timeout=10):
        pass


async def _run_api(
    emulator: Emulator,
    source: Path,
    journal: Path | None = None,
    *,
    transport: Any = None,
    **options: Any,
) -> Any:
    async with MaskingClient(
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        base_url=emulator.base_url,
        options=FAST,
        transport=transport,
    ) as client:
        return await run_batch(
            source,
            client=client,
            options=BatchOptions(
                op="create", journal=journal, progress=False, concurrency=4, **options
            ),
            report=lambda _: None,
        )


# -- 1: a JSON array on one line ---------------------------------------------------------------


def test_1_one_line_json_array_runs_every_row(server: str, tmp_path: Path) -> None:
    """A json.dump'ed array (one line) with a journal: all 50 rows sent, none skipped."""
    rows = [{"first_party": a, "second_party": b} for a, b in party_pairs(50, start=1000)]
    source = tmp_path / "pairs.json"
    source.write_text(json.dumps(rows))
    done = _cli(server, "create", str(source), "--journal", str(tmp_path / "j"), *QUICK)
    assert done.returncode == 0, done.stderr
    results = _results(tmp_path / "pairs.results.jsonl")
    assert sorted(int(r["key"]) for r in results) == list(range(1, 51))
    assert {r["outcome"] for r in results} == {"ok"}
    assert len(_sessions(server)) == 50


# -- 2: a lost create whose lookup failed is never re-sent blindly ----------------------------


def test_2_lost_create_with_failing_lookup_stays_unresolved_then_is_found(
    server: str, tmp_path: Path
) -> None:
    """Answer lost, every lookup failing: unresolved (exit 4); the resume adopts, never re-sends."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "j"
    _csv(source, 1, start=1100)
    _fault(server, kind="drop", operation="create", phase="after", count=1)
    _fault(server, kind="error", operation="list", status=503)
    first = _cli(
        server, "create", str(source), "--journal", str(journal), "--deadline", "2s", *QUICK
    )
    assert first.returncode == 4, first.stderr
    assert _results(tmp_path / "pairs.results.jsonl")[0]["outcome"] == "unresolved"
    assert (tmp_path / "pairs.results.unresolved.csv").exists()
    _clear_faults(server)
    second = _cli(server, "create", str(source), "--journal", str(journal), *QUICK)
    assert second.returncode == 0, second.stderr
    (result,) = _results(tmp_path / "pairs.results.jsonl")
    assert result["adopted"]
    assert len(_sessions(server)) == 1
    assert not (tmp_path / "pairs.results.unresolved.csv").exists()
    assert sum(e["method"] == "POST" for e in _log(server)) == 1


# -- 3: strict adoption ------------------------------------------------------------------------


async def test_3a_a_create_that_never_arrived_adopts_no_older_session(tmp_path: Path) -> None:
    """An older session of the pair with another duration is not taken for a lost create's."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        ((a, b),) = party_pairs(1, start=1200)
        async with MaskingClient(
            DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=FAST
        ) as client:
            older = await client.create_session(
                {"first_party": a, "second_party": b, "session_expiry": 300}
            )
        source = tmp_path / "pairs.csv"
        source.write_text(f"first_party,second_party,session_expiry\n{a},{b},600\n")
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="before", count=1))
        summary = await _run_api(emulator, source)
        assert summary.exit_status == 0
        assert summary.adopted == 0
        (result,) = _results(tmp_path / "pairs.results.jsonl")
        assert result["session_uuid"] != older.session_uuid
        assert len(emulator.store.account(DEFAULT_AUTH_ID).sessions) == 2  # type: ignore[union-attr]


async def test_3b_a_lost_create_never_adopts_another_rows_session(tmp_path: Path) -> None:
    """Two rows, same pair and parameters, the second's answer lost: two sessions, each its own."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        ((a, b),) = party_pairs(1, start=1250)
        source = tmp_path / "pairs.csv"
        source.write_text(f"first_party,second_party\n{a},{b}\n{a},{b}\n")
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
        summary = await _run_api(emulator, source)
        assert summary.exit_status == 0
        results = _results(tmp_path / "pairs.results.jsonl")
        sessions = emulator.store.account(DEFAULT_AUTH_ID).sessions  # type: ignore[union-attr]
        assert {r["session_uuid"] for r in results} == set(sessions)
        assert len(sessions) == 2


# -- 4: lookups see every status ---------------------------------------------------------------


async def test_4_a_session_expired_before_the_resume_is_still_found(tmp_path: Path) -> None:
    """Made, answer lost, then expired before the resume: adopted, not made again."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        source, journal = tmp_path / "pairs.csv", tmp_path / "j"
        _csv(source, 1, start=1300, session_expiry="60")
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
        emulator.add_fault(FaultRule(kind="error", operation="list", status=500))
        first = await _run_api(emulator, source, journal, deadline=1.0)
        assert first.exit_status == 4
        emulator.clear_faults()
        (made,) = emulator.store.account(DEFAULT_AUTH_ID).sessions  # type: ignore[union-attr]
        async with MaskingClient(
            DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=FAST
        ) as client:
            await client.expire_session(made)  # as the 60 s would have
        second = await _run_api(emulator, source, journal)
        assert second.exit_status == 0
        assert second.adopted == 1
        assert len(emulator.store.account(DEFAULT_AUTH_ID).sessions) == 1  # type: ignore[union-attr]


# -- 5: a server still working when the client gave up -----------------------------------------


async def test_5_lookup_waits_for_a_server_still_working_on_the_create(tmp_path: Path) -> None:
    """The server applies the create after the client timed out: found, not made twice."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        source = tmp_path / "pairs.csv"
        _csv(source, 3, start=1400)
        emulator.add_fault(
            FaultRule(kind="stall", operation="create", phase="before", stall_seconds=0.7)
        )  # > the 0.5 s timeout, < timeout + settle
        summary = await _run_api(emulator, source)
        assert summary.exit_status == 0
        assert summary.adopted == 3
        assert len(emulator.store.account(DEFAULT_AUTH_ID).sessions) == 3  # type: ignore[union-attr]


# -- 6: a 2xx we cannot fully read -------------------------------------------------------------


class OddCreateAnswers:
    """The real transport, but a create's 2xx carries one field no reader expects."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, FAST)

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        response = await self.inner.send(method, url, params=params, json_body=json_body)
        if method == "POST" and response.status < 300 and url.endswith("/Session/"):
            body = json.loads(response.body)
            body["session"] = {"session_uuid": body["session_uuid"], "duration": "forever"}
            return Response(response.status, response.headers, json.dumps(body).encode())
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_6_an_unreadable_2xx_create_is_resolved_by_its_session_uuid(tmp_path: Path) -> None:
    """A 2xx with an odd field is ok: its session_uuid is read back, nothing re-sent."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        source = tmp_path / "pairs.csv"
        _csv(source, 2, start=1500)
        summary = await _run_api(emulator, source, transport=OddCreateAnswers())
        assert summary.exit_status == 0
        sessions = emulator.store.account(DEFAULT_AUTH_ID).sessions  # type: ignore[union-attr]
        assert {r["session_uuid"] for r in _results(tmp_path / "pairs.results.jsonl")} == set(
            sessions
        )
        assert len(sessions) == 2


# -- 7: two runs on one journal ----------------------------------------------------------------


def test_7_a_second_run_on_a_busy_journal_exits_2_at_once(server: str, tmp_path: Path) -> None:
    """A cron overlap: the second run exits 2 at once; the first makes each session once."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "j"
    _csv(source, 40, start=1600)
    args = [*COMMAND, "create", str(source), "--journal", str(journal), "--no-progress"]
    first = subprocess.Popen(
        [*args, "--rate", "8/1s"], env=cli_env(server), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not _results_exist(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = _cli(
            server,
            "create",
            str(source),
            "--journal",
            str(journal),
            "--out",
            str(tmp_path / "o.jsonl"),
        )
        assert second.returncode == 2
        assert "another run is using this journal" in second.stderr
    finally:
        _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert len(_sessions(server)) == 40


def _results_exist(folder: Path) -> bool:
    path = folder / "pairs.results.jsonl"
    return path.exists() and path.stat().st_size > 0


# -- 8: a journal that cannot be written ---------------------------------------------------------


async def test_8_a_journal_write_error_stops_the_run_and_accounts_for_every_row(
    tmp_path: Path,
) -> None:
    """'database is locked' mid-run: the run stops (exit 5), every row is accounted for."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
        source, journal = tmp_path / "pairs.csv", tmp_path / "j"
        _csv(source, 40, start=1700)
        blocker: list[sqlite3.Connection] = []

        def block_after_first(result: Any) -> None:
            if not blocker:
                connection = sqlite3.connect(journal, isolation_level=None)
                connection.execute("BEGIN EXCLUSIVE")
                blocker.append(connection)

        async with MaskingClient(
            DEFAULT_AUTH_ID,
            DEFAULT_AUTH_TOKEN,
            base_url=emulator.base_url,
            options=attrs_evolve_rate(FAST, "8/1s"),
        ) as client:
            summary = await run_batch(
                source,
                client=client,
                options=BatchOptions(op="create", journal=journal, progress=False, concurrency=2),
                report=lambda _: None,
                on_result=block_after_first,
            )
        blocker[0].close()
        assert summary.exit_status == 5
        assert summary.halted == "journal"
        assert summary.done + summary.unprocessed == 40
        made = len(emulator.store.account(DEFAULT_AUTH_ID).sessions)  # type: ignore[union-attr]
        assert made <= summary.outcomes["ok"] + summary.outcomes["unresolved"]


def attrs_evolve_rate(options: ClientOptions, rate: str) -> ClientOptions:
    import attrs

    requests, per = rate.split("/")
    return attrs.evolve(options, rate_limit=RateLimit(int(requests), float(per.rstrip("s"))))


# -- 9: resume tells the truth -----------------------------------------------------------------


def test_9a_a_wrong_token_stops_at_once_and_the_resume_sends_everything(
    server: str, tmp_path: Path
) -> None:
    """401: stop (exit 3), almost nothing sent, rows unprocessed; the right token does them all."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "j"
    _csv(source, 20, start=1800)
    wrong = _cli(
        server,
        "create",
        str(source),
        "--journal",
        str(journal),
        *QUICK,
        "--concurrency",
        "2",
        token="wrong",
    )
    assert wrong.returncode == 3, wrong.stderr
    assert len(_log(server)) <= 2
    assert (tmp_path / "pairs.results.unprocessed.csv").exists()
    right = _cli(server, "create", str(source), "--journal", str(journal), *QUICK)
    assert right.returncode == 0, right.stderr
    assert len(_sessions(server)) == 20


def test_9b_rows_refused_before_are_failed_again_until_retried(server: str, tmp_path: Path) -> None:
    """Refused with 400: failed again on resume (exit 1); --retry-failed sends them again."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "j"
    _csv(source, 6, start=1900)
    _fault(server, kind="error", operation="create", status=400, count=2)
    first = _cli(server, "create", str(source), "--journal", str(journal), *QUICK)
    assert first.returncode == 1
    _clear_faults(server)
    again = _cli(server, "create", str(source), "--journal", str(journal), *QUICK)
    assert again.returncode == 1
    assert Counter(r["outcome"] for r in _results(tmp_path / "pairs.results.jsonl")) == {
        "ok": 4,
        "failed": 2,
    }
    assert len((tmp_path / "pairs.results.failed.csv").read_text().splitlines()) == 3
    retried = _cli(
        server, "create", str(source), "--journal", str(journal), "--retry-failed", *QUICK
    )
    assert retried.returncode == 0, retried.stderr
    assert len(_sessions(server)) == 6
    assert not (tmp_path / "pairs.results.failed.csv").exists()


# -- 10: outputs never destroy the input ---------------------------------------------------------


def test_10_an_output_over_the_input_is_refused(server: str, tmp_path: Path) -> None:
    """--out = the input, or a failed file re-run with --out X.csv: exit 2, input intact."""
    source = tmp_path / "X.csv"
    _csv(source, 3, start=2000)
    before = source.read_text()
    same = _cli(server, "create", str(source), "--out", str(source), *QUICK)
    assert same.returncode == 2
    assert "would destroy" in same.stderr
    failed = tmp_path / "X.failed.csv"
    failed.write_text(before)
    again = _cli(server, "create", str(failed), "--out", str(source), *QUICK)
    assert again.returncode == 2
    assert "would destroy" in again.stderr
    journal = _cli(
        server,
        "create",
        str(source),
        "--out",
        str(tmp_path / "j.jsonl"),
        "--journal",
        str(tmp_path / "j.jsonl"),
        *QUICK,
    )
    assert journal.returncode == 2
    assert "is the journal" in journal.stderr
    assert source.read_text() == before == failed.read_text()
    assert _sessions(server) == []


# -- 11: the command's op wins -------------------------------------------------------------------


def test_11_create_refuses_a_row_whose_op_is_expire(server: str, tmp_path: Path) -> None:
    """`create` with a row saying op=expire: that row is invalid; the live session is untouched."""
    ((a, b),) = party_pairs(1, start=2100)
    live = _cli(server, "create", str(_one(tmp_path / "live.csv", a, b)), *QUICK)
    assert live.returncode == 0
    uuid = _results(tmp_path / "live.results.jsonl")[0]["session_uuid"]
    source = tmp_path / "mixed.csv"
    source.write_text(f"op,session_uuid\nexpire,{uuid}\n")
    done = _cli(server, "create", str(source), *QUICK)
    assert done.returncode == 1
    assert "op: is 'expire', but this command runs create" in done.stderr
    assert [s["status"] for s in _sessions(server)] == ["active"]


def _one(path: Path, a: str, b: str) -> Path:
    path.write_text(f"first_party,second_party\n{a},{b}\n")
    return path


# -- 12: session ids that would change the URL ---------------------------------------------------


@pytest.mark.parametrize("bad", [".", "?x", "%2e", "#", "../x", "a/b"])
def test_12_a_session_id_that_is_not_an_id_is_refused(
    server: str, tmp_path: Path, bad: str
) -> None:
    """An update naming '.', '?x', '%2e', '#'...: invalid row, nothing sent, no session made."""
    source = tmp_path / "u.jsonl"
    source.write_text(json.dumps({"session_uuid": bad, "record": True}) + "\n")
    done = _cli(server, "update", str(source), *QUICK)
    assert done.returncode == 1
    assert "session_uuid: must be a session id" in done.stderr
    assert _log(server) == []
    assert _sessions(server) == []


# -- 13: the results file never lags; no stale files ------------------------------------------


def test_13_results_match_the_journal_after_kill_and_stale_files_go(
    server: str, tmp_path: Path
) -> None:
    """kill -9: every result line is a committed outcome, report rebuilds the rest; a
    successful resume leaves no failed/unprocessed file of the earlier run."""
    source, journal = tmp_path / "pairs.csv", tmp_path / "j"
    _csv(source, 60, start=2200)
    (tmp_path / "pairs.results.failed.csv").write_text("stale\n")
    process = subprocess.Popen(
        [
            *COMMAND,
            "create",
            str(source),
            "--journal",
            str(journal),
            "--no-progress",
            "--rate",
            "40/1s",
            *("--timeout", "0.5", "--settle", "0.3"),
        ],
        env=cli_env(server),
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(_lines(tmp_path / "pairs.results.jsonl")) < 10:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    written = {r["key"] for r in map(json.loads, _lines(tmp_path / "pairs.results.jsonl"))}
    with sqlite3.connect(journal) as db:
        committed = {k for (k,) in db.execute("SELECT key FROM rows WHERE state = 'ok'")}
    assert written <= committed
    rebuilt = _cli(server, "report", "--journal", str(journal), "--out", str(tmp_path / "r.jsonl"))
    assert rebuilt.returncode in (1, 4), rebuilt.stderr
    assert {r["key"] for r in _results(tmp_path / "r.jsonl") if r["outcome"] == "ok"} == committed
    resumed = _cli(server, "create", str(source), "--journal", str(journal), *QUICK)
    assert resumed.returncode == 0, resumed.stderr
    assert not (tmp_path / "pairs.results.failed.csv").exists()
    assert not (tmp_path / "pairs.results.unprocessed.csv").exists()
    assert len(_sessions(server)) == 60


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().split("\n")[:-1]]


# -- 14: rows on one session run in file order ---------------------------------------------------


def test_14_expire_then_update_of_one_session_run_in_file_order(
    server: str, tmp_path: Path
) -> None:
    """`run` with expire-then-update rows per session: every expire reaches the server first."""
    source = tmp_path / "make.csv"
    _csv(source, 12, start=2300)
    assert _cli(server, "create", str(source), *QUICK).returncode == 0
    uuids = [r["session_uuid"] for r in _results(tmp_path / "make.results.jsonl")]
    rows = tmp_path / "ops.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"op": "expire", "session_uuid": u})
            + "\n"
            + json.dumps({"op": "update", "session_uuid": u, "record": True})
            + "\n"
            for u in uuids
        )
    )
    _get_clear = urllib.request.Request(server + "/emulator/requests", method="DELETE")
    urllib.request.urlopen(_get_clear, timeout=10).close()
    _cli(server, "run", str(rows), *QUICK, "--concurrency", "16")
    order = [(e["method"], e["path"].rstrip("/").rsplit("/", 1)[-1]) for e in _log(server)]
    for uuid in uuids:
        mine = [method for method, target in order if target == uuid]
        assert mine[0] == "DELETE", mine
