"""Calls at a rate with callback latency: every event sent arrives, and the report says so."""

from __future__ import annotations

import subprocess
import sys

import pytest

from masking_async.emulator.calls.load import CallLoad, run_call_load


async def test_calls_at_a_rate_deliver_every_callback() -> None:
    """20 recorded calls in a second: 8 events each are sent, all arrive, latency is reported."""
    report = await run_call_load(
        CallLoad(rate=20, duration=1, talk_seconds=0.2, record=True, method="GET")
    )
    assert report.calls == 20
    assert report.events_expected == 20 * 8
    assert (report.lost, report.deliveries_failed) == (0, 0)
    latency = report.latency_ms
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]


@pytest.mark.parametrize(
    ("args", "message"), [(["--rate", "0"], "rate"), (["--rate", "x"], "--rate")]
)
def test_bad_options_are_one_line(args: list[str], message: str) -> None:
    """A bad rate is refused in one line naming it, exit status 2."""
    done = subprocess.run(
        [sys.executable, "-m", "masking_async", "callbacks", "load", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
