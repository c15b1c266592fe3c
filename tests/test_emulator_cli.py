"""``masking-async emulator``: flags become the config, and the server runs until Ctrl-C."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from masking_async.cli import emulator as cli
from masking_async.cli import main as cli_main
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Account,
    Emulator,
    EmulatorConfig,
    FaultRule,
    Faults,
    ManualClock,
    ServerRateLimit,
)
from masking_async.emulator.process import emulator_process


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(["emulator", *argv])


def test_defaults_are_localhost_8180_default_account_real_rate_limit():
    """Without flags: 127.0.0.1:8180, the default account, 300 requests per 5 s, no faults."""
    config = cli.build_config(_args())
    assert (config.host, config.port) == ("127.0.0.1", 8180)
    assert [a.auth_id for a in config.accounts] == [DEFAULT_AUTH_ID]
    assert config.rate_limit == ServerRateLimit(300, 5.0)
    assert not config.faults.active


def test_every_flag_reaches_the_config():
    """Accounts, numbers, limit and each fault flag land in the EmulatorConfig."""
    config = cli.build_config(
        _args(
            "--account", "MAAAAAAAAAAAAAAAAAA1:t1",
            "--account", "SABBBBBBBBBBBBBBBBB2:t2",
            "--number", "+12125550100",
            "--subaccount-number", "SA" + "1" * 18 + ":+12125550101",
            "--rate-limit", "off",
            "--latency", "20ms", "--jitter", "5ms",
            "--error-rate", "0.1", "--throttle-rate", "0.2",
            "--drop-rate", "0.05", "--stall-rate", "0.05", "--stall-seconds", "2s",
            "--fault-phase", "after", "--fault-operations", "create,update",
            "--fault", "kind=error,operation=update,status=503,phase=after,count=2",
            "--fault", "kind=stall,stall_seconds=1.5s,probability=0.25",
            "--seed", "42",
        )
    )  # fmt: skip
    assert config.accounts == (
        Account("MAAAAAAAAAAAAAAAAAA1", "t1"),
        Account("SABBBBBBBBBBBBBBBBB2", "t2"),
    )
    assert config.pool.numbers == ("+12125550100",)
    assert config.pool.subaccount_numbers == {"SA" + "1" * 18: ("+12125550101",)}
    assert config.rate_limit is None
    assert config.faults == Faults(
        latency=0.02,
        jitter=0.005,
        error_rate=0.1,
        throttle_rate=0.2,
        drop_rate=0.05,
        stall_rate=0.05,
        stall_seconds=2.0,
        phase="after",
        operations={"create", "update"},
        seed=42,
    )
    assert config.fault_rules == (
        FaultRule(kind="error", operation="update", status=503, phase="after", count=2),
        FaultRule(kind="stall", stall_seconds=1.5, probability=0.25),
    )
    assert config.seed == 42


@pytest.mark.parametrize(
    "argv",
    [
        ("--account", "nocolon"),
        ("--rate-limit", "fast"),
        ("--latency", "soon"),
        ("--fault", "kind=error,status=429"),
        ("--fault", "kind=drop,colour=red"),
        ("--fault", "error"),
    ],
)
def test_bad_flags_are_usage_errors(argv, capsys):
    """A malformed flag value stops argparse with a message, not a traceback."""
    with pytest.raises(SystemExit):
        _args(*argv)
    assert "error" in capsys.readouterr().err


def test_bad_combination_exits_2(capsys):
    """Fault rates adding past 1 are reported on stderr with exit status 2."""
    assert cli.handle(_args("--error-rate", "0.9", "--drop-rate", "0.9")) == cli.EXIT_USAGE
    assert "at most 1" in capsys.readouterr().err


_SERVE = """
import argparse
from masking_async.cli import emulator
parser = argparse.ArgumentParser()
emulator.register(parser.add_subparsers())
args = parser.parse_args(["emulator", "--port", "0"])
raise SystemExit(args.handler(args))
"""


def test_serves_until_interrupted():
    """The command prints its URL, answers HTTP there, and exits 0 on Ctrl-C."""
    with subprocess.Popen(
        [sys.executable, "-c", _SERVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            line = process.stdout.readline() if process.stdout else ""
            url = line.split(" on ", 1)[1].split(" ", 1)[0]
            assert url.startswith("http://127.0.0.1:")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + "/v1/Account/x/Masking/Session/", timeout=5)
            refused.value.close()
            assert refused.value.code == 401
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0


async def test_fixture_is_manual_clock_without_rate_limit(masking_emulator):
    """The masking_emulator fixture runs on a ManualClock with the rate limit off."""
    assert isinstance(masking_emulator.clock, ManualClock)
    assert masking_emulator.config.rate_limit is None
    assert masking_emulator.base_url.startswith("http://127.0.0.1:")


async def test_base_url_needs_a_running_emulator():
    """Asking an emulator that is not running for its URL is a clear error."""
    emulator = Emulator(EmulatorConfig())
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.base_url


def _request(url: str, method: str = "GET", body: object = None, **headers: str) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_manual_clock_state_file_and_admin_token_from_the_command_line(tmp_path):
    """--clock manual moves only over HTTP, --admin-token guards it, --state keeps sessions."""
    state = tmp_path / "state.json"
    token = {"Authorization": "Bearer t0ken"}
    api = {"Authorization": "Basic " + base64.b64encode(b"%s:%s" % (
        DEFAULT_AUTH_ID.encode(), DEFAULT_AUTH_TOKEN.encode())).decode(),
        "Content-Type": "application/json"}  # fmt: skip
    flags = ("--clock", "manual", "--state", str(state), "--admin-token", "t0ken")
    with emulator_process(*flags) as url:
        with pytest.raises(urllib.error.HTTPError) as refused:
            _request(url + "/emulator/clock")
        refused.value.close()
        assert refused.value.code == 401
        start = _request(url + "/emulator/clock", **token)
        moved = _request(url + "/emulator/clock", "POST", {"advance": 90}, **token)
        assert moved["epoch"] == start["epoch"] + 90
        pair = {"first_party": "+12125550199", "second_party": "+12125550198"}
        made = _request(f"{url}/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/", "POST", pair, **api)
    saved = json.loads(state.read_text())
    sessions = saved["accounts"][DEFAULT_AUTH_ID]["sessions"]
    assert [s["session_uuid"] for s in sessions] == [made["session_uuid"]]
    with emulator_process(*flags) as url:
        path = f"/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/{made['session_uuid']}/"
        assert _request(url + path, **api)["response"]["status"] == "active"


def test_a_corrupt_state_file_exits_2(tmp_path, capsys):
    """A --state file that cannot be loaded is one line on stderr and exit status 2."""
    state = tmp_path / "state.json"
    state.write_text("[]")
    assert cli.handle(_args("--port", "0", "--state", str(state))) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "state.json" in err
    assert "Traceback" not in err


def _ctl(url: str, *argv: str) -> tuple[int, object]:
    """Run ``masking-async emulator-ctl --url URL ARGV...`` in-process; (status, printed JSON)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli_main(["emulator-ctl", "--url", url, *argv])
    return status, json.loads(buffer.getvalue()) if buffer.getvalue() else None


def test_emulator_ctl_drives_the_control_plane(tmp_path, capsys, monkeypatch):
    """Clock, faults, requests, state and reset from the command line, admin token from env."""
    monkeypatch.setenv("MASKING_EMULATOR_ADMIN_TOKEN", "t0ken")
    with emulator_process("--clock", "manual", "--admin-token", "t0ken") as url:
        status, clock = _ctl(url, "clock", "--advance", "1h")
        assert (status, clock["manual"]) == (0, True)
        status, faults = _ctl(url, "faults", "--add", "kind=error,operation=get,status=503")
        assert [r["status"] for r in faults["rules"]] == [503]
        status, faults = _ctl(url, "faults", "--remove", str(faults["rules"][0]["id"]))
        assert faults == {"rules": []}
        snapshot = tmp_path / "snapshot.json"
        assert _ctl(url, "state", "--save", str(snapshot))[0] == 0
        assert json.loads(snapshot.read_text())["version"] == 1
        assert _ctl(url, "state", "--load", str(snapshot))[0] == 0
        assert _ctl(url, "reset")[1] == {"reset": "all"}
        assert _ctl(url, "requests", "--limit", "5")[1] == {"requests": []}
        # refusals are one line and exit 2
        assert _ctl(url, "reset", "--account", "MANOSUCHACCOUNT00000")[0] == 2
        assert "404" in capsys.readouterr().err
        monkeypatch.delenv("MASKING_EMULATOR_ADMIN_TOKEN")
        assert _ctl(url, "clock")[0] == 2
        assert "401" in capsys.readouterr().err


def test_emulator_ctl_reports_an_unreachable_emulator(capsys):
    """No emulator at the URL: one line on stderr, exit status 1."""
    assert _ctl("http://127.0.0.1:9", "clock")[0] == 1
    err = capsys.readouterr().err
    assert "cannot reach" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("url", ["localhost:8180", "http://127.0.0.1:x", "ftp://127.0.0.1:9"])
def test_emulator_ctl_refuses_a_url_that_is_not_http(capsys, url):
    """Not an http(s) URL at all: refused at once naming --emulator-url/--url, exit status 2."""
    with pytest.raises(SystemExit) as exited:
        _ctl(url, "clock")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --emulator-url/--url" in err
    assert "Traceback" not in err
