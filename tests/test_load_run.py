"""`masking-async load` against the emulator: it holds its rate, and a stall shows in the tail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    EmulatorConfig,
    Faults,
    SystemClock,
)
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.load.plan import LoadPlan
from masking_async.load.runner import LoadResult, LoadTarget, run_load


async def _run(factory: EmulatorFactory, faults: Faults, plan: LoadPlan) -> tuple[LoadResult, int]:
    emu = await factory(EmulatorConfig(rate_limit=None, faults=faults), clock=SystemClock())
    target = LoadTarget(
        base_url=emu.base_url, auth_id=DEFAULT_AUTH_ID, auth_token=DEFAULT_AUTH_TOKEN
    )
    result = await run_load(plan, target)
    state = emu.store.account(DEFAULT_AUTH_ID)
    assert state is not None
    active = sum(1 for record in state.sessions.values() if record.ended is None)
    return result, active


async def test_load_holds_its_rate_and_cleans_up(masking_emulator_factory: EmulatorFactory) -> None:
    """Every planned request is sent on time, the mix is honoured, and no session is left."""
    plan = LoadPlan(
        rate=150,
        requests=300,
        mix={"create": 5, "get": 3, "update": 1, "expire": 1},
        warmup_sessions=10,
    )
    result, active = await _run(masking_emulator_factory, Faults(), plan)
    schedule = result.schedule
    assert schedule.sent == schedule.recorder.completed == 300
    assert schedule.recorder.failed == 0
    assert schedule.achieved_rate > 0.8 * 150
    assert set(schedule.recorder.histograms) == {"create", "get", "update", "expire"}
    assert active == 0
    assert result.cleanup.left == ()
    assert result.cleanup.expired == result.cleanup.sessions > 0


async def test_injected_stall_shows_in_the_reported_tail(
    masking_emulator_factory: EmulatorFactory,
) -> None:
    """A few 0.4 s stalls at the server appear in p99/max, measured from the due time."""
    plan = LoadPlan(rate=200, requests=400, mix={"get": 1}, warmup_sessions=5)
    faults = Faults(stall_rate=0.03, stall_seconds=0.4, operations={"get"}, seed=5)
    result, _ = await _run(masking_emulator_factory, faults, plan)
    latency = result.schedule.recorder.latency_ms("get")
    assert latency["max"] >= 400
    assert latency["p99"] >= 300


def test_load_command_writes_a_report(tmp_path: Path) -> None:
    """The command runs against its embedded emulator and writes a JSON report for scripts."""
    report = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "masking_async",
            "load",
            "--rate",
            "100/s",
            "--requests",
            "100",
            "--warmup",
            "5",
            "--quiet",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "p99.9 ms" in done.stdout
    data = json.loads(report.read_text())
    assert data["completed"] == 100
    assert data["kept_up"] is True
    assert set(data["latency_ms"]["all"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}


def test_bad_options_are_one_clear_line() -> None:
    """A rate it cannot read is an error naming the option, exit status 2, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "masking_async", "load", "--rate", "fast"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--rate 'fast'" in done.stderr
    assert "Traceback" not in done.stderr
