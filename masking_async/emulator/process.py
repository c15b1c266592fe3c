"""An emulator in a child process: for tests that kill the client, and for fair benchmarks.

In-process emulators share the test's event loop and interpreter lock; a child process survives
a client that is killed with SIGKILL and leaves the benchmark's core to the client under test.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["emulator_process"]

_URL = re.compile(r"http://127\.0\.0\.1:\d+")


@contextlib.contextmanager
def emulator_process(*flags: str, start_timeout: float = 30.0) -> Iterator[str]:
    """Run ``masking-async emulator --port 0 FLAGS...``; yield its base URL; stop it after."""
    command = [sys.executable, "-m", "masking_async", "emulator", "--port", "0", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(start_timeout):
                raise RuntimeError(f"the emulator did not start within {start_timeout:.0f} s")
        match = _URL.search(process.stdout.readline())
        if match is None:
            raise RuntimeError("the emulator printed no base URL")
        yield match.group(0)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
