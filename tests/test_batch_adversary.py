"""Adversarial tests of the batch engine's promise: each row one session, one final outcome.

Each test is a defect an adversarial review found by trying to break the promise, now fixed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import masking_async.batch.drive as drive_module
import masking_async.client._adoption as adoption_module
import masking_async.client._client as client_module
from masking_async import ClientOptions, MaskingClient, RateLimit, RetryPolicy, Timeouts
from masking_async.batch import BatchOptions, JournalError, run_batch
from masking_async.client import AiohttpTransport, Response
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SystemClock,
)
from masking_async.emulator.faults import FaultRule
from masking_async.errors import TransportError
from masking_async.phones import party_pairs

FAST = ClientOptions(
    rate_limit=RateLimit.off(),
    retry=RetryPolicy(initial=0.01, maximum=0.05),
    timeouts=Timeouts(total=0.5, connect=0.5),
    adopt_settle=0.3,
)


@pytest.fixture
async def emulator() -> Any:
    async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as running:
        yield running


def _sessions(emulator: Emulator) -> dict[str, Any]:
    account = emulator.store.account(DEFAULT_AUTH_ID)
    return dict(account.sessions) if account is not None else {}


def _pairs_csv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("first_party,second_party\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    return path


def _out(source: Path) -> Path:
    """Where a run writes its results by default: beside the input."""
    return source.with_name(source.stem + ".results.jsonl")


def _results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _run(
    emulator: Emulator,
    source: Any,
    *,
    stop: anyio.Event | None = None,
    on_result: Any = None,
    client_options: ClientOptions = FAST,
    transport: Any = None,
    token: str = DEFAULT_AUTH_TOKEN,
    **options: Any,
) -> Any:
    options.setdefault("op", "create")
    async with MaskingClient(
        DEFAULT_AUTH_ID,
        token,
        base_url=emulator.base_url,
        options=client_options,
        transport=transport,
    ) as client:
        return await run_batch(
            source,
            client=client,
            options=BatchOptions(progress=False, **options),
            stop=stop,
            report=lambda _: None,
            on_result=on_result,
        )


# -- editing the input between runs ----------------------------------------------------------


async def test_a_row_inserted_at_the_top_creates_no_second_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Three rows done; a fourth inserted above them; the resume makes no second session."""
    pairs = list(party_pairs(4, start=7000))
    journal = tmp_path / "j"
    source = _pairs_csv(tmp_path / "pairs.csv", pairs[1:])
    first = await _run(emulator, source, journal=journal)
    assert first.exit_status == 0
    _pairs_csv(source, pairs)  # the new row goes first
    await _run(emulator, source, journal=journal)
    made = [(s.first_party, s.second_party) for s in _sessions(emulator).values()]
    assert len(made) == len(set(made)), "a pair was created twice"


async def test_rows_removed_from_the_input_are_not_sent(emulator: Emulator, tmp_path: Path) -> None:
    """A run stopped before sending; the file cut to two rows; only those two are created."""
    pairs = list(party_pairs(5, start=7100))
    journal = tmp_path / "j"
    source = _pairs_csv(tmp_path / "pairs.csv", pairs)
    stopped = anyio.Event()
    stopped.set()
    first = await _run(emulator, source, journal=journal, stop=stopped)
    assert first.unprocessed == 5
    assert not _sessions(emulator)
    _pairs_csv(source, pairs[:2])  # the user drops the last three rows
    second = await _run(emulator, source, journal=journal)
    made = {(s.first_party, s.second_party) for s in _sessions(emulator).values()}
    assert made == set(pairs[:2])
    assert second.done + second.unprocessed == second.total == 2


async def test_the_unprocessed_file_run_with_the_job_journal_is_refused(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Twin rows, stopped after the first; the unprocessed file given with the job's journal is
    refused (the journal keys rows of its own input), and the job's own resume makes the twin."""
    (pair,) = list(party_pairs(1, start=8800))
    journal, source = tmp_path / "j", _pairs_csv(tmp_path / "p.csv", [pair, pair])
    stop = anyio.Event()
    first = await _run(
        emulator, source, journal=journal, concurrency=1, stop=stop, on_result=lambda _: stop.set()
    )
    rest = first.files["unprocessed rows"]
    with pytest.raises(JournalError, match="records a run of"):
        await _run(emulator, rest, journal=journal, out=tmp_path / "rest.jsonl")
    second = await _run(emulator, source, journal=journal)
    assert second.exit_status == 0
    assert len(_sessions(emulator)) == 2, "the second row never got its session"


async def test_done_rows_given_again_as_json_are_refused_not_sent_back_as_failed(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A done CSV given again as JSON with its journal: no done row lands in the failed file."""
    pairs = list(party_pairs(2, start=7050))
    journal = tmp_path / "j"
    rows = [{"first_party": a, "second_party": b, "session_expiry": 600} for a, b in pairs]
    csv = tmp_path / "pairs.csv"
    csv.write_text(
        "first_party,second_party,session_expiry\n" + "".join(f"{a},{b},600\n" for a, b in pairs)
    )
    assert (await _run(emulator, csv, journal=journal)).exit_status == 0
    again = tmp_path / "pairs.json"
    again.write_text(json.dumps(rows))  # the same rows; 600 is now a number, not text
    # A journal belongs to its own input: another file is refused before anything is written,
    # so no done row can land in a failed file "ready to run again".
    with pytest.raises(JournalError, match="records a run of"):
        await _run(emulator, again, journal=journal)
    assert not (tmp_path / "pairs.results.failed.json").exists()


async def test_a_file_fixed_after_strict_refused_it_runs_with_the_same_journal(
    emulator: Emulator, tmp_path: Path
) -> None:
    """--strict refuses (nothing sent), the bad cell is fixed, the same command runs every row."""
    from masking_async.batch import StrictModeError

    pairs = list(party_pairs(2, start=7800))
    journal, source = tmp_path / "j", tmp_path / "p.csv"
    source.write_text(f"first_party,second_party\n{pairs[0][0]},{pairs[0][1]}\n{pairs[1][0]},x\n")
    with pytest.raises(StrictModeError):
        await _run(emulator, source, journal=journal, strict=True)
    _pairs_csv(source, pairs)
    summary = await _run(emulator, source, journal=journal, strict=True)
    assert summary.exit_status == 0
    assert len(_sessions(emulator)) == 2


async def test_a_changed_row_goes_to_the_failed_file_as_the_input_has_it(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A row edited since the journal saw it is refused, and written back as it now reads."""
    pairs = list(party_pairs(3, start=7850))
    journal, source = tmp_path / "j", tmp_path / "p.csv"
    stop = anyio.Event()
    stop.set()
    await _run(emulator, _pairs_csv(source, pairs[:2]), journal=journal, stop=stop)
    _pairs_csv(source, [pairs[0], pairs[2]])  # row 2 now names another pair
    summary = await _run(emulator, source, journal=journal)
    failed = summary.files["failed rows"].read_text()
    assert pairs[2][0] in failed, failed


# -- stopping ------------------------------------------------------------------------------------


async def test_a_stopped_resume_lists_only_unsent_rows_as_unprocessed(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Row 1 unresolved, rows 2-3 ok; a resume stopped at once: none of them is 'unprocessed'."""
    pairs = list(party_pairs(3, start=7900))
    journal, source = tmp_path / "j", _pairs_csv(tmp_path / "p.csv", pairs)
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
    emulator.add_fault(FaultRule(kind="error", operation="list", status=503))
    first = await _run(emulator, source, journal=journal, deadline=1.0, concurrency=1)
    assert first.outcomes == {"unresolved": 1, "ok": 2}
    emulator.clear_faults()
    stop = anyio.Event()
    stop.set()  # Ctrl-C while the resume was still reading the file
    second = await _run(emulator, source, journal=journal, stop=stop)
    unprocessed = second.files.get("unprocessed rows")
    # "Rows never finished": run as they are, they would make three more sessions.
    assert unprocessed is None, unprocessed.read_text()


async def test_a_stopped_run_without_a_journal_is_not_told_to_resume_with_one(
    emulator: Emulator, tmp_path: Path
) -> None:
    """No --journal, stopped after one row: the summary does not say "run again with the same
    --journal" (there is none; running again would re-create the rows already done)."""
    source = _pairs_csv(tmp_path / "p.csv", list(party_pairs(3, start=8100)))
    stop = anyio.Event()
    summary = await _run(emulator, source, concurrency=1, stop=stop, on_result=lambda _: stop.set())
    assert summary.interrupted
    assert summary.outcomes["ok"] == 1
    assert "same --journal" not in summary.format(), summary.format()


async def test_a_stop_accounts_for_rows_waiting_behind_a_busy_lane(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Three identical rows, the first held by the server; a stop with no grace: all 3 counted."""
    (pair,) = list(party_pairs(1, start=8200))
    source = _pairs_csv(tmp_path / "p.csv", [pair, pair, pair])
    emulator.add_fault(
        FaultRule(kind="stall", operation="create", phase="before", count=1, stall_seconds=2.0)
    )
    stop = anyio.Event()

    async def stop_soon() -> None:
        await anyio.sleep(0.3)
        stop.set()

    async with anyio.create_task_group() as group:
        group.start_soon(stop_soon)
        summary = await _run(emulator, source, concurrency=3, stop=stop, grace=0.0)
    assert summary.done + summary.unprocessed == 3, summary.format()


async def test_a_zero_deadline_still_sends_each_row_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    """--deadline 0 (accepted by the CLI) means "no retries", not "send nothing"."""
    source = _pairs_csv(tmp_path / "p.csv", list(party_pairs(2, start=8300)))
    summary = await _run(emulator, source, deadline=0.0)
    assert summary.outcomes["ok"] == 2, summary.format()


# -- claims: a session adopted by one row is never another row's ----------------------------------


async def test_two_identical_rows_in_a_long_file_never_share_a_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Twin rows, 1st answer lost (applied), 2nd create lost (not applied): two sessions.

    The other rows flow while the twins wait for their lookups, so the faults are the twins' own.
    """
    (twin, *others) = list(party_pairs(301, start=7200))
    source = _pairs_csv(tmp_path / "pairs.csv", [twin, twin, *others])

    class LoseTheTwins(AiohttpTransport):
        twins = 0

        async def send(self, method: str, url: str, **kwargs: Any) -> Response:
            body = kwargs.get("json_body") or {}
            if method != "POST" or body.get("first_party") != twin[0] or self.twins >= 2:
                return await super().send(method, url, **kwargs)
            self.twins += 1
            if self.twins == 1:  # applied, then the answer is lost
                await super().send(method, url, **kwargs)
            raise TransportError("ServerDisconnectedError", method=method, url=url)

    results: list[Any] = []
    transport = LoseTheTwins(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, FAST)
    summary = await _run(
        emulator, source, concurrency=1, on_result=results.append, transport=transport
    )
    assert summary.exit_status == 0, summary.format()
    made = [r for r in results if r.key in ("1", "2")]
    assert [r.outcome for r in made] == ["ok", "ok"]
    assert made[0].session_uuid != made[1].session_uuid
    assert len(_sessions(emulator)) == 302


class SlowRecordCreates:
    """The real transport; a create asking ``record`` waits ``delay`` s before it leaves."""

    def __init__(self, options: ClientOptions, delay: float) -> None:
        self.inner = AiohttpTransport(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, options)
        self.delay = delay

    async def send(
        self, method: str, url: str, *, params: Any = None, json_body: Any = None
    ) -> Response:
        if method == "POST" and url.endswith("/Session/") and (json_body or {}).get("record"):
            await anyio.sleep(self.delay)
        return await self.inner.send(method, url, params=params, json_body=json_body)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_lost_create_never_adopts_a_session_another_row_has_in_flight(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Same pair, row 2 also asks record: row 1 lost (not applied) must not take row 2's session."""
    ((a, b),) = party_pairs(1, start=7300)
    source = tmp_path / "pairs.jsonl"
    source.write_text(
        json.dumps({"first_party": a, "second_party": b})
        + "\n"
        + json.dumps({"first_party": a, "second_party": b, "record": True})
        + "\n"
    )
    slow = attrs.evolve(FAST, timeouts=Timeouts(total=2.0, connect=2.0))
    # Row 1's create never arrives; row 2's leaves 1 s later and is answered 1.8 s after
    # that, so row 1's lookup (at 2.0 + 0.3 s) runs while row 2 is still in flight.
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="before", count=1))
    emulator.add_fault(
        FaultRule(kind="stall", operation="create", phase="after", count=1, stall_seconds=1.8)
    )
    summary = await _run(
        emulator,
        source,
        concurrency=2,
        client_options=slow,
        transport=SlowRecordCreates(slow, delay=1.0),
        out=tmp_path / "r.jsonl",
    )
    assert summary.exit_status == 0
    uuids = [r["session_uuid"] for r in _results(tmp_path / "r.jsonl")]
    assert len(set(uuids)) == 2, "two rows ended with one session"
    assert len(_sessions(emulator)) == 2


async def test_the_journal_stays_small_over_a_long_file(emulator: Emulator, tmp_path: Path) -> None:
    """1,000 rows: the journal's write-ahead log stays near SQLite's 4 MB autocheckpoint."""
    source = _pairs_csv(tmp_path / "p.csv", list(party_pairs(1000, start=8600)))
    journal, peak = tmp_path / "j", [0]
    wal = journal.with_name("j-wal")

    def measure(_: Any) -> None:
        if wal.exists():
            peak[0] = max(peak[0], wal.stat().st_size)

    summary = await _run(emulator, source, journal=journal, concurrency=1, on_result=measure)
    assert summary.exit_status == 0
    # A million-row job grows the log ~40 GB at this pace: the disk fills, the run stops.
    assert peak[0] < 16 * 2**20, f"write-ahead log reached {peak[0] / 2**20:.0f} MiB"


class NamedThenLost:
    """The real transport; the 1st create's 2xx is unreadable but names its session, the 2nd
    create is lost on the way (never reaches the server)."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, FAST)
        self.creates = 0

    async def send(
        self, method: str, url: str, *, params: Any = None, json_body: Any = None
    ) -> Response:
        if method == "POST" and url.endswith("/Session/"):
            self.creates += 1
            if self.creates == 2:
                raise TransportError("ClientOSError", method=method, url=url)
        response = await self.inner.send(method, url, params=params, json_body=json_body)
        if method == "POST" and url.endswith("/Session/") and self.creates == 1:
            body = json.loads(response.body)
            body["session"] = "not an object"  # unreadable; only session_uuid can be read
            return Response(response.status, response.headers, json.dumps(body).encode())
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_session_named_to_an_unresolved_row_is_not_adopted_by_its_twin(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Twin rows: the 1st's answer names S1 but S1 cannot be read (unresolved); the 2nd's
    create is lost. The 2nd must not take S1, which the resume then gives the 1st too."""
    (pair,) = list(party_pairs(1, start=8700))
    source, journal = _pairs_csv(tmp_path / "p.csv", [pair, pair]), tmp_path / "j"
    emulator.add_fault(FaultRule(kind="error", operation="get", status=503))
    await _run(emulator, source, journal=journal, deadline=1.0, transport=NamedThenLost())
    emulator.clear_faults()
    await _run(emulator, source, journal=journal)
    uuids = [r["session_uuid"] for r in _results(tmp_path / "p.results.jsonl")]
    assert len(set(uuids)) == 2, f"both rows ended with {uuids}"


# -- resuming with other settings --------------------------------------------------------------


async def test_a_resume_with_a_shorter_timeout_waits_for_the_first_runs_send(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Stopped while a create (3 s timeout) is held at the server; resume at 0.5 s: one session."""
    source, journal = (
        _pairs_csv(tmp_path / "pairs.csv", list(party_pairs(1, start=7400))),
        tmp_path / "j",
    )
    emulator.add_fault(
        FaultRule(kind="stall", operation="create", phase="before", count=1, stall_seconds=2.0)
    )
    patient = attrs.evolve(FAST, timeouts=Timeouts(total=3.0, connect=3.0))
    stop = anyio.Event()

    async def stop_soon() -> None:
        await anyio.sleep(0.3)  # the create is at the server, held
        stop.set()

    async with anyio.create_task_group() as group:
        group.start_soon(stop_soon)
        first = await _run(
            emulator, source, journal=journal, stop=stop, client_options=patient, grace=0.0
        )
    assert first.outcomes["unresolved"] == 1
    await _run(emulator, source, journal=journal)  # FAST: 0.5 s timeout, 0.3 s settle
    await anyio.sleep(2.0)  # the held create is applied by now
    assert len(_sessions(emulator)) == 1


# -- clocks ------------------------------------------------------------------------------------


class LateClock(SystemClock):
    """The server's clock, a minute behind the client's (a client whose clock runs fast)."""

    def now(self) -> float:
        return super().now() - 60.0


async def test_a_lost_create_is_found_when_the_server_clock_is_a_minute_behind(
    tmp_path: Path,
) -> None:
    """Answer lost (applied), the server a minute behind: adopted, not made twice."""
    async with Emulator(EmulatorConfig(rate_limit=None), clock=LateClock()) as emulator:
        source = _pairs_csv(tmp_path / "pairs.csv", list(party_pairs(1, start=7500)))
        emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
        summary = await _run(emulator, source)
        assert summary.exit_status == 0
        assert len(_sessions(emulator)) == 1


# -- when a lookup may be trusted ------------------------------------------------------------------


async def test_a_create_that_queued_for_a_connection_is_looked_up_late_enough(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Row 2 waits 1.8 s for the one connection, then lands 2.5 s after it left: found."""
    source = _pairs_csv(tmp_path / "pairs.csv", list(party_pairs(2, start=7600)))
    one_line = attrs.evolve(
        FAST, max_connections=1, timeouts=Timeouts(total=2.0, connect=2.0), adopt_settle=0.6
    )
    # Row 1 holds the only connection 1.8 s (answered within its 2 s timeout).
    emulator.add_fault(
        FaultRule(kind="stall", operation="create", phase="after", count=1, stall_seconds=1.8)
    )
    # Row 2's create is applied 2.5 s after it reached the server: after the client's 2 s
    # timeout, before timeout + settle (2.6 s), the window a lookup promises to cover.
    emulator.add_fault(
        FaultRule(kind="stall", operation="create", phase="before", count=1, stall_seconds=2.5)
    )
    summary = await _run(emulator, source, concurrency=2, client_options=one_line)
    await anyio.sleep(1.0)  # anything still held has landed
    assert summary.exit_status == 0
    assert len(_sessions(emulator)) == 2


# -- authentication ------------------------------------------------------------------------------


async def test_a_wrong_token_stops_a_resume_that_only_has_lookups_to_do(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A resume whose first request is a lookup, with a revoked token: exit 3 at once."""
    source, journal = (
        _pairs_csv(tmp_path / "p.csv", list(party_pairs(1, start=7700))),
        tmp_path / "j",
    )
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
    emulator.add_fault(FaultRule(kind="error", operation="list", status=503))
    first = await _run(emulator, source, journal=journal, deadline=1.0)
    assert first.outcomes["unresolved"] == 1
    emulator.clear_faults()
    emulator.request_log.clear()
    second = await _run(emulator, source, journal=journal, deadline=3.0, token="revoked")
    assert second.exit_status == 3
    assert len(emulator.request_log) <= 2, "it kept sending after the server refused the token"


# -- what the user is told -------------------------------------------------------------------------


def test_every_exit_status_of_a_batch_run_is_documented() -> None:
    """docs/batch.md's exit status table and `create --help` name 3, 4 and 5 (auth, unresolved,
    journal), the statuses a script must tell apart."""
    import subprocess
    import sys

    from masking_async.batch import summary

    table = Path(__file__).parent.parent.joinpath("docs", "batch.md").read_text()
    helped = subprocess.run(
        [sys.executable, "-m", "masking_async", "create", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for status in (summary.EXIT_AUTH, summary.EXIT_UNRESOLVED, summary.EXIT_JOURNAL):
        assert f"| {status} |" in table, f"docs/batch.md does not list exit status {status}"
        assert f" {status} " in " ".join(helped.split()), f"--help does not list {status}"


# -- masking-async report ------------------------------------------------------------------------


def _report(*args: str, cwd: Path | None = None) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "masking_async", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


async def test_report_refuses_to_write_over_its_journal(emulator: Emulator, tmp_path: Path) -> None:
    """`report --journal J --out J`: exit 2, one line, the journal intact."""
    journal = tmp_path / "j.db"
    source = _pairs_csv(tmp_path / "p.csv", list(party_pairs(1, start=8000)))
    assert (await _run(emulator, source, journal=journal)).exit_status == 0
    size = journal.stat().st_size
    done = _report("--journal", str(journal), "--out", str(journal))
    assert journal.stat().st_size == size, "the journal was overwritten"
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


async def test_report_refuses_to_write_over_the_input(emulator: Emulator, tmp_path: Path) -> None:
    """`report --journal J --out INPUT`: exit 2, the input intact."""
    journal = tmp_path / "j.db"
    source = _pairs_csv(tmp_path / "p.csv", list(party_pairs(1, start=8010)))
    before = source.read_text()
    assert (await _run(emulator, source, journal=journal)).exit_status == 0
    done = _report("--journal", str(journal), "--out", str(source))
    assert source.read_text() == before, "the input was overwritten"
    assert done.returncode == 2


# -- the Python API for backends -------------------------------------------------------------------


async def test_two_batches_on_one_client_never_adopt_the_same_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    """One long-lived client, two overlapping run_batch calls with the same row: two sessions."""
    ((a, b),) = party_pairs(1, start=8400)
    # Batch X's create is applied and its answer lost; batch Y's never arrives.
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="before", count=1))
    found: dict[str, Any] = {}
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=FAST
    ) as client:

        async def batch(name: str, delay: float) -> None:
            await anyio.sleep(delay)
            await run_batch(
                [{"key": f"{name}-1", "first_party": a, "second_party": b}],
                client=client,
                options=BatchOptions(op="create", progress=False),
                on_result=lambda result: found.__setitem__(name, result),
            )

        async with anyio.create_task_group() as group:
            group.start_soon(batch, "x", 0.0)
            group.start_soon(batch, "y", 0.1)
    assert found["x"].outcome == found["y"].outcome == "ok"
    assert found["x"].session_uuid != found["y"].session_uuid
    assert len(_sessions(emulator)) == 2


async def test_report_from_another_folder_writes_beside_the_input(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Job A (relative paths) reported from job B's folder: B's files untouched, A's rebuilt."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _pairs_csv(first / "pairs.csv", list(party_pairs(1, start=8500)))
    monkeypatch.chdir(first)
    assert (await _run(emulator, Path("pairs.csv"), journal=Path("j"))).exit_status == 0
    theirs = second / "pairs.results.jsonl"
    theirs.write_text("job B's results\n")
    (second / "pairs.results.failed.csv").write_text("first_party,second_party,error\n")
    done = _report("--journal", str(first / "j"), cwd=second)
    assert done.returncode == 0, done.stderr
    assert theirs.read_text() == "job B's results\n"
    assert (second / "pairs.results.failed.csv").exists()


# -- a second adversary: where the engine's belief about time, order or ownership was wrong ------


async def test_an_invalid_row_fails_alone_and_the_run_goes_on(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A create row with no first_party is failed (never sent); the rows around it are ok."""
    (a, b), (c, d) = party_pairs(2, start=8600)
    source = tmp_path / "pairs.csv"
    source.write_text(f"first_party,second_party\n{a},{b}\n,+14152008699\n{c},{d}\n")
    summary = await _run(emulator, source, journal=tmp_path / "j")
    assert dict(summary.outcomes) == {"ok": 2, "failed": 1}
    assert len(_sessions(emulator)) == 2


async def test_a_single_party_create_never_adopts_a_two_party_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Single-party A (never arrives) and A-B (answer lost) side by side: each its own session."""
    source = tmp_path / "pairs.jsonl"
    rows = [
        {"first_party": "+14152008700", "create_session_with_single_party": True},
        {"first_party": "+14152008700", "second_party": "+14152008701"},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="before", count=1))
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
    summary = await _run(emulator, source, journal=tmp_path / "j", concurrency=2)
    assert summary.exit_status == 0
    made = {r["key"]: _sessions(emulator)[r["session_uuid"]] for r in _results(_out(source))}
    assert made["1"].second_party is None
    assert made["2"].second_party == "+14152008701"
    assert len(_sessions(emulator)) == 2


async def _session_with_two_updates(emulator: Emulator, folder: Path) -> tuple[str, Path]:
    """A session, and a file that updates its expiry to 1000 s, then to 2000 s."""
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=FAST
    ) as client:
        made = await client.create_session(
            {"first_party": "+14152008710", "second_party": "+14152008711"}
        )
    return made.session_uuid, _updates_csv(folder / "changes.csv", made.session_uuid)


def _updates_csv(path: Path, uuid: str) -> Path:
    path.write_text(f"op,session_uuid,session_expiry\nupdate,{uuid},1000\nupdate,{uuid},2000\n")
    return path


def _expiry_set_last(emulator: Emulator, uuid: str) -> float:
    """The session_expiry of the update applied last (expiry minus the time it was applied)."""
    record = _sessions(emulator)[uuid]
    return float(record.expiry - record.modified)


async def test_an_update_left_unresolved_holds_back_the_next_update_of_its_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Row 1's update is lost until its deadline: row 2 waits for the resume, then goes last."""
    uuid, source = await _session_with_two_updates(emulator, tmp_path)
    emulator.add_fault(FaultRule(kind="error", operation="update", phase="after", status=500))
    first = await _run(
        emulator,
        source,
        op=None,
        journal=tmp_path / "j",
        deadline=1.0,
        on_result=lambda result: emulator.clear_faults(),
    )
    assert (dict(first.outcomes), first.unprocessed) == ({"unresolved": 1}, 1)
    again = await _run(emulator, source, op=None, journal=tmp_path / "j")
    assert dict(again.outcomes) == {"ok": 2}
    assert _expiry_set_last(emulator, uuid) == pytest.approx(2000, abs=1)


async def test_a_timed_out_update_is_sent_again_only_once_it_can_no_longer_land(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Row 1's update is held past the timeout, then applied: row 2 still lands last."""
    uuid, source = await _session_with_two_updates(emulator, tmp_path)
    emulator.add_fault(  # > the 0.5 s timeout, < timeout + settle
        FaultRule(kind="stall", operation="update", phase="before", count=1, stall_seconds=0.7)
    )
    summary = await _run(emulator, source, op=None, journal=tmp_path / "j")
    assert summary.exit_status == 0
    await anyio.sleep(1.0)  # anything still held has landed
    assert _expiry_set_last(emulator, uuid) == pytest.approx(2000, abs=1)


async def test_a_create_left_unresolved_holds_back_the_next_create_of_its_pair(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Row 1 (record) unresolved, row 2 (no record) lost: row 2 never adopts row 1's session."""
    source = tmp_path / "pairs.jsonl"
    pair = {"first_party": "+14152008720", "second_party": "+14152008721"}
    source.write_text(json.dumps({**pair, "record": True}) + "\n" + json.dumps(pair) + "\n")
    emulator.add_fault(FaultRule(kind="drop", operation="create", phase="after", count=1))
    emulator.add_fault(FaultRule(kind="error", operation="list", status=503))

    def outage_ends(result: Any) -> None:  # as row 1 gives up, row 2's create is lost
        if result.key == "1":
            emulator.clear_faults()
            emulator.add_fault(FaultRule(kind="drop", operation="create", phase="before", count=1))

    options = {"journal": tmp_path / "j", "deadline": 1.0, "concurrency": 4}
    await _run(emulator, source, on_result=outage_ends, **options)
    assert (await _run(emulator, source, **options)).exit_status == 0
    made = {r["key"]: _sessions(emulator)[r["session_uuid"]] for r in _results(_out(source))}
    assert (made["1"].options or {}).get("record") is True
    assert not (made["2"].options or {}).get("record")
    assert len(_sessions(emulator)) == 2


class _SteppedClock:
    """``time`` as a process sees it when NTP steps the wall clock: monotonic untouched."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


async def test_a_wall_clock_step_does_not_bring_a_lookup_forward(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock steps +2 s as a held create times out: the lookup still waits its full delay."""
    clock = _SteppedClock()
    for module in (client_module, adoption_module, drive_module):
        monkeypatch.setattr(module, "time", clock)

    class StepOnTimeout(AiohttpTransport):
        async def send(self, method: str, url: str, **kwargs: Any) -> Response:
            try:
                return await super().send(method, url, **kwargs)
            except Exception:
                clock.offset = 2.0
                raise

    source = _pairs_csv(tmp_path / "pairs.csv", list(party_pairs(1, start=8730)))
    emulator.add_fault(  # > the 0.5 s timeout, < timeout + settle
        FaultRule(kind="stall", operation="create", phase="before", count=1, stall_seconds=0.7)
    )
    transport = StepOnTimeout(DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, FAST)
    summary = await _run(emulator, source, journal=tmp_path / "j", transport=transport)
    assert (summary.exit_status, summary.adopted) == (0, 1)
    assert len(_sessions(emulator)) == 1
