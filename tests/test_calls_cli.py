"""The command line: ``emulator call`` and ``emulator phone`` on a running emulator, and
``callbacks listen`` printing what a real emulator process sends, as JSON Lines."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from masking_async.callbacks import NONCE_HEADER, SIGNATURE_HEADER, compute_signature
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process

FIRST, SECOND = "+12125550101", "+12125550102"
_AUTH = base64.b64encode(f"{DEFAULT_AUTH_ID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "masking_async", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create(url: str, **params: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/v1/Account/{DEFAULT_AUTH_ID}/Masking/Session/",
        data=json.dumps({"first_party": FIRST, "second_party": SECOND, **params}).encode(),
        headers={"Authorization": f"Basic {_AUTH}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return body


@pytest.fixture
def server() -> Iterator[str]:
    with emulator_process("--rate-limit", "off") as url:
        yield url


class Lines:
    """A child's output, line by line, read by a thread: select() cannot see lines that Python
    already buffered, so waiting on the pipe would miss events printed together."""

    def __init__(self, stream: Any) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def next(self, timeout: float = 30) -> str:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing printed within {timeout} s") from None
        if line is None:
            raise AssertionError("the process ended")
        return line

    def join(self) -> None:
        self._thread.join(10)


Listener = tuple[subprocess.Popen[str], str, Lines]


@pytest.fixture
def listener() -> Iterator[Listener]:
    """``callbacks listen --port 0`` in a child process, and the URL it printed."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masking_async",
            "callbacks",
            "listen",
            "--port",
            "0",
            "--auth-token",
            DEFAULT_AUTH_TOKEN,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors, output = Lines(process.stderr), Lines(process.stdout)
    try:
        line = errors.next()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line
        yield process, match.group(0), output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        errors.join()
        output.join()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_emulator_call_places_a_call(server: str) -> None:
    """`emulator phone` scripts a number and `emulator call` places a call, printed as JSON."""
    session = create(server)
    phone = cli("emulator", "phone", SECOND, "answer=1,hangup=5", "--emulator-url", server)
    assert phone.returncode == 0, phone.stderr
    assert json.loads(phone.stdout)["script"]["hangup_after"] == 5
    done = cli(
        "emulator",
        "call",
        "--from",
        FIRST,
        "--to",
        session["virtual_number"],
        "--caller-script",
        "hangup=30",
        "--emulator-url",
        server,
    )
    assert done.returncode == 0, done.stderr
    call = json.loads(done.stdout)
    assert (call["session_uuid"], call["from"], call["kind"]) == (
        session["session_uuid"],
        FIRST,
        "dial-in",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--caller-script", "ring=2"], "--caller-script"),
        (["--from", "12"], "from:"),
    ],
)
def test_emulator_call_bad_input_is_one_line(server: str, args: list[str], message: str) -> None:
    """A bad script or number is one error line naming it, exit status 2."""
    base = {"--from": FIRST, "--to": "+12125550100"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [item for pair in base.items() for item in pair]
    done = cli("emulator", "call", *flat, "--emulator-url", server)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "status"), [("http://127.0.0.1:9", 1), ("localhost", 2), ("http://127.0.0.1:port", 2)]
)
def test_emulator_call_without_an_emulator(url: str, status: int) -> None:
    """No emulator at the URL (exit 1, as emulator-ctl), or no URL at all (exit 2): one line
    naming --emulator-url."""
    done = cli("emulator", "call", "--from", FIRST, "--to", SECOND, "--emulator-url", url)
    assert done.returncode == status
    assert "--emulator-url" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_emulator_phone_ignores_a_proxy_in_the_environment(server: str) -> None:
    """The emulator is local: an http_proxy that leads nowhere does not stand in the way."""
    command = [sys.executable, "-m", "masking_async", "emulator", "phone", SECOND, "busy"]
    done = subprocess.run(
        [*command, "--emulator-url", server],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "http_proxy": "http://127.0.0.1:9", "no_proxy": ""},
    )
    assert done.returncode == 0, done.stderr


def test_listen_needs_a_token() -> None:
    """Without a token (and without --no-verify) listen refuses to start, exit 2."""
    env = {k: v for k, v in os.environ.items() if k != "PLIVO_AUTH_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "masking_async", "callbacks", "listen", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "--auth-token" in done.stderr


def test_listen_prints_verified_events_only(listener: Listener) -> None:
    """A signed callback is printed as one JSON line; an unsigned one is refused with 403."""
    _, url, output = listener
    params = {"EventName": "SessionTimeout", "SessionUUID": "u-1", "SequenceNumber": "3"}
    body = "&".join(f"{k}={v}" for k, v in params.items()).encode()
    for signed in (False, True):
        headers = {"Content-Type": "application/x-www-form-urlencoded", NONCE_HEADER: "n1"}
        if signed:
            headers[SIGNATURE_HEADER] = compute_signature(
                "POST", url, params, "n1", DEFAULT_AUTH_TOKEN
            )
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == (200 if signed else 403)
    event = json.loads(output.next())
    assert (event["family"], event["event_name"], event["sequence_number"]) == (
        "status",
        "SessionTimeout",
        3,
    )


def test_an_emulator_process_calls_back_the_listener(server: str, listener: Listener) -> None:
    """Real time, real processes: a short scripted call reaches the listener as JSON Lines."""
    _, url, output = listener
    session = create(server, callback_url=url)
    assert (
        cli("emulator", "phone", SECOND, "answer=0,hangup=0.2", "--emulator-url", server).returncode
        == 0
    )
    placed = cli(
        "emulator",
        "call",
        "--from",
        FIRST,
        "--to",
        session["virtual_number"],
        "--emulator-url",
        server,
    )
    assert placed.returncode == 0, placed.stderr
    names = [json.loads(output.next())["event_name"] for _ in range(6)]
    assert names == [
        "SessionFirstPartyAnswer",
        "SessionSecondPartyRing",
        "SessionSecondPartyAnswer",
        "SessionSecondPartyHangup",
        "SessionFirstPartyHangup",
        "SessionPartiesHangup",
    ]


def test_emulator_phone_sends_the_admin_token() -> None:
    """On an emulator with an admin token, `emulator phone` without it is one 401 line (exit 2);
    with --admin-token it is accepted."""
    with emulator_process("--rate-limit", "off", "--admin-token", "cli-admin") as url:
        args = ("emulator", "phone", SECOND, "busy", "--emulator-url", url)
        refused = cli(*args, "--admin-token", "wrong")
        assert refused.returncode == 2
        assert "Bearer" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        done = cli(*args, "--admin-token", "cli-admin")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["script"]["busy"] is True
