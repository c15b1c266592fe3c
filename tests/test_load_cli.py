"""The issue's load-tester reproductions, each through the real `masking-async load` command."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from masking_async.cli import main
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    Faults,
    ServerRateLimit,
    SystemClock,
)
from masking_async.emulator.pytest_plugin import EmulatorFactory


@attrs.frozen
class Outcome:
    """What the command did: its exit status, its output and its JSON report."""

    status: int
    stdout: str
    stderr: str
    report: dict[str, Any]


async def load(emulator: Emulator | None, tmp_path: Path, *args: str) -> Outcome:
    """Run `masking-async load ARGS` in a child process against ``emulator`` (or its own)."""
    report = tmp_path / "load.json"
    where = (
        []
        if emulator is None
        else [
            "--base-url",
            emulator.base_url,
            "--auth-id",
            DEFAULT_AUTH_ID,
            "--auth-token",
            DEFAULT_AUTH_TOKEN,
        ]
    )
    command = [sys.executable, "-m", "masking_async", "load", *where, "--report", str(report)]
    with anyio.fail_after(90):
        done = await anyio.run_process([*command, *args], check=False)
    text = report.read_text() if report.exists() else "{}"
    return Outcome(done.returncode, done.stdout.decode(), done.stderr.decode(), json.loads(text))


def active_sessions(emulator: Emulator) -> set[str]:
    state = emulator.store.account(DEFAULT_AUTH_ID)
    assert state is not None
    return {uuid for uuid, record in state.sessions.items() if record.ended is None}


async def started(factory: EmulatorFactory, **config: Any) -> Emulator:
    return await factory(EmulatorConfig(**{"rate_limit": None, **config}), clock=SystemClock())


async def test_throttled_expires_are_retried_until_nothing_is_left(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """A third of expires answer 429, in the run and the cleanup: still no session is left."""
    faults = Faults(throttle_rate=0.3, operations={"expire"}, seed=3)
    emulator = await started(masking_emulator_factory, faults=faults)
    out = await load(
        emulator,
        tmp_path,
        *("--rate", "60/s", "--requests", "60", "--mix", "create=1,expire=1"),
        *("--cleanup-rate", "off"),  # random 429s would teach an adaptive limit a crawl
    )
    assert out.report["errors"].get("expire:429", 0) > 0  # the run's own expires were throttled
    assert active_sessions(emulator) == set()
    cleanup = out.report["cleanup"]
    assert cleanup["left"] == []
    assert cleanup["expired"] == cleanup["sessions"] > 0
    assert cleanup["throttled_429"] > 0
    assert "cleanup: expired" in out.stderr
    assert out.status == 1, out.stderr  # the run's throttled expires: the load was refused


async def test_sessions_it_cannot_expire_are_named(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """When every expire is refused, the run stops trying in time and names what it left."""
    faults = Faults(throttle_rate=1.0, operations={"expire"}, seed=1)
    emulator = await started(masking_emulator_factory, faults=faults)
    out = await load(
        emulator,
        tmp_path,
        *("--rate", "50/s", "--requests", "20", "--mix", "create=1"),
        *("--warmup", "3", "--cleanup-timeout", "2"),
    )
    left = active_sessions(emulator)
    assert len(left) == 23
    assert set(out.report["cleanup"]["left"]) == left
    assert all(uuid in out.stderr for uuid in left)
    assert "could not expire 23 of 23" in out.stderr
    assert "cleanup: 0/23 expired" in out.stderr  # the live line while it kept trying
    assert out.status == 3


async def test_a_throttled_server_is_not_reported_as_a_slow_one(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """Asked 60/s of a server that takes 20/s: 429s apart, queueing apart, not kept up, exit 1."""
    emulator = await started(masking_emulator_factory, rate_limit=ServerRateLimit(20, 1.0))
    out = await load(
        emulator, tmp_path, "--rate", "60/s", "--duration", "2", "--mix", "get=1", "--warmup", "3"
    )
    report = out.report
    assert report["throttled_429"] > 0  # counted apart; the 429 pause holds the rest back
    assert report["kept_up"] is False
    assert any("429" in reason for reason in report["not_kept_up"])
    assert report["queued_ms"]["p90"] > report["server_ms"]["p90"]
    assert report["cleanup"]["paced_at"] == "300/5s"  # a server of its own: the API's limit
    assert "throttled" in out.stdout
    assert out.status == 1


async def test_a_slow_server_is_not_reported_as_a_throttled_one(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """A server 150 ms slow: the time is the server's, nothing queued, no 429, kept up, exit 0."""
    emulator = await started(masking_emulator_factory, faults=Faults(latency=0.15))
    out = await load(
        emulator, tmp_path, "--rate", "40/s", "--duration", "1", "--mix", "get=1", "--warmup", "3"
    )
    report = out.report
    assert report["throttled_429"] == 0
    assert report["server_ms"]["p50"] >= 150
    assert report["queued_ms"]["p50"] < report["server_ms"]["p50"] / 3
    assert report["kept_up"] is True, report["not_kept_up"]
    assert out.status == 0, out.stderr


async def test_a_crossed_threshold_has_its_own_exit_status(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """`p99<50ms` against a 100 ms server is crossed (exit 99); the others pass and say so."""
    emulator = await started(masking_emulator_factory, faults=Faults(latency=0.1))
    out = await load(
        emulator,
        tmp_path,
        *("--rate", "40/s", "--duration", "1", "--mix", "get=1", "--warmup", "3"),
        *("--threshold", "p99<50ms", "--threshold", "errors<1%", "--threshold", "rate_429<=0%"),
    )
    results = {item["threshold"]: item["passed"] for item in out.report["thresholds"]}
    assert results == {"p99<50ms": False, "errors<1%": True, "rate_429<=0%": True}
    assert "threshold crossed: p99<50ms" in out.stdout
    assert out.status == 99


async def test_thresholds_that_hold_exit_zero(tmp_path: Path) -> None:
    """Thresholds that hold against the embedded emulator leave the exit status at 0."""
    out = await load(
        None,
        tmp_path,
        *("--rate", "50/s", "--duration", "1", "--warmup", "3"),
        *("--threshold", "p50<5s", "--threshold", "max<10000", "--threshold", "errors<=0%"),
    )
    assert [item["passed"] for item in out.report["thresholds"]] == [True, True, True]
    assert out.status == 0, out.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--threshold", "p99<"), "--threshold 'p99<'"),
        (("--threshold", "p99<200parsecs"), "--threshold 'p99<200parsecs'"),
        (("--threshold", "latency<2s"), "--threshold 'latency<2s'"),
        (("--threshold", "errors<150%"), "--threshold 'errors<150%'"),
        (("--threshold", "p101<1s"), "--threshold 'p101<1s'"),
        (("--threshold", "errors<5ms"), "--threshold 'errors<5ms'"),
        (("--stages", "30s:fast"), "--stages '30s:fast'"),
        (("--stages", "30:50/s"), "--stages '30:50/s'"),
        (("--stages", ""), "--stages ''"),
        (("--stages", "1s:5/s", "--rate", "5/s"), "--stages"),
        (("--cleanup-timeout", "-1"), "--cleanup-timeout"),
        (("--grace", "-0.5"), "--grace"),
        (("--max-in-flight", "0"), "--max-in-flight"),
        (("--warmup", "-3"), "--warmup"),
        (("--requests", "0"), "--requests"),
        (("--rate", "10/s", "--duration", "0.01"), "--duration"),
        (("--timeout", "0"), "--timeout 0"),
        (("--cleanup-rate", "quick"), "--cleanup-rate 'quick'"),
        (("--report", "/no/such/folder/r.json"), "--report '/no/such/folder/r.json'"),
        (("--html", "/no/such/folder/r.html"), "--html '/no/such/folder/r.html'"),
        (("--mix", "create=1,delete=1"), "--mix"),
    ],
)
def test_bad_load_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], named: str
) -> None:
    """Option text it cannot read: one line naming the option, exit status 2, nothing sent."""
    assert main(["load", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert named in err


async def test_bad_threshold_from_the_shell(tmp_path: Path) -> None:
    """The same through the installed command: one line, exit 2, no traceback."""
    out = await load(None, tmp_path, "--threshold", "p99<200parsecs")
    assert out.status == 2
    assert out.stderr.strip().splitlines() == [
        "masking-async load: error: --threshold 'p99<200parsecs': expected METRIC OP VALUE such"
        " as p99<200ms or errors<1%; metrics: pN, max, mean, errors, rate_429; OP: <, <=, >, >="
    ]


async def test_ramping_stages_follow_the_timetable(tmp_path: Path) -> None:
    """`--stages 1s:20/s,1s:60/s` ramps 0→20→60/s: 10 + 40 requests, asked per second."""
    out = await load(None, tmp_path, "--stages", "1s:20/s,1s:60/s", "--warmup", "3")
    report = out.report
    assert report["sent"] == report["completed"] == 50
    assert report["stages"] == [
        {"duration_s": 1.0, "target_rate": 20.0},
        {"duration_s": 1.0, "target_rate": 60.0},
    ]
    asked = [point["asked"] for point in report["series"]]
    assert sum(asked) == 50
    assert asked[:2] == [10, 40]
    assert out.status == 0, out.stderr


async def test_requests_stuck_at_the_end_are_cut_after_the_grace(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """Reads stalled 30 s at the server do not hold the run: they are cut and counted apart."""
    faults = Faults(stall_rate=0.3, stall_seconds=30, operations={"get"}, seed=2)
    emulator = await started(masking_emulator_factory, faults=faults)
    out = await load(
        emulator,
        tmp_path,
        *("--rate", "40/s", "--duration", "1", "--mix", "get=1", "--warmup", "3"),
        *("--grace", "0.5", "--timeout", "60"),
    )
    report = out.report
    assert report["interrupted"] > 0
    assert report["sent"] == report["completed"] + report["interrupted"]
    assert report["phases_s"]["drain"] < 10
    assert active_sessions(emulator) == set()


async def test_creates_whose_answer_was_lost_are_found_and_expired(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """Creates applied but unanswered (look-ups failing too) are found by the cleanup."""
    faults = Faults(drop_rate=0.4, phase="after", operations={"create", "list"}, seed=11)
    emulator = await started(masking_emulator_factory, faults=faults)
    out = await load(
        emulator,
        tmp_path,
        *("--rate", "50/s", "--requests", "40", "--mix", "create=1", "--warmup", "0"),
    )
    cleanup = out.report["cleanup"]
    assert out.report["errors"].get("create:connection", 0) > 0
    assert cleanup["lost_creates"] > 0
    assert cleanup["found"] > 0
    assert active_sessions(emulator) == set()
    assert cleanup["left"] == []


async def test_ctrl_c_stops_sending_then_cleans_up_and_reports(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """SIGINT mid-run: sending stops, the report is written, nothing is left, exit 130."""
    emulator = await started(masking_emulator_factory)
    report = tmp_path / "load.json"
    command = [
        *(sys.executable, "-m", "masking_async", "load", "--base-url", emulator.base_url),
        *("--auth-id", DEFAULT_AUTH_ID, "--auth-token", DEFAULT_AUTH_TOKEN),
        *("--rate", "50/s", "--duration", "60", "--report", str(report)),
    ]
    with anyio.fail_after(60):
        async with await anyio.open_process(command) as process:
            assert process.stderr is not None
            seen = b""
            async for chunk in process.stderr:  # the first progress line: the run is under way
                seen += chunk
                if b"sent" in seen:
                    break
            process.send_signal(signal.SIGINT)
            await process.wait()
    data = json.loads(report.read_text())
    assert process.returncode == data["exit_status"] == 130
    assert 0 < data["sent"] < 3000
    assert any(reason.startswith("stopped early") for reason in data["not_kept_up"])
    assert data["cleanup"]["left"] == []
    assert active_sessions(emulator) == set()


async def test_cleanup_of_the_embedded_emulator_is_not_paced_at_the_api_limit(
    tmp_path: Path,
) -> None:
    """The embedded emulator has no limit, so neither has its cleanup; a real server's has."""
    out = await load(None, tmp_path, "--rate", "100/s", "--duration", "2", "--quiet")
    cleanup, phases = out.report["cleanup"], out.report["phases_s"]
    assert cleanup["paced_at"] is None
    assert cleanup["expired"] == cleanup["sessions"] > 50
    assert set(phases) == {"warmup", "load", "drain", "cleanup", "total"}
    assert sum(phases.values()) - phases["total"] <= phases["total"]
    assert out.status == 0, out.stderr
