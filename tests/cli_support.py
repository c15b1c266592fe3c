"""Running the real ``masking-async`` command in a child process against an emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN

COMMAND = [sys.executable, "-m", "masking_async"]


def cli_env(url: str) -> dict[str, str]:
    """This environment, with the emulator's default account and ``url`` as the server."""
    return {
        **os.environ,
        "PLIVO_AUTH_ID": DEFAULT_AUTH_ID,
        "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "MASKING_ASYNC_BASE_URL": url,
    }


def run_cli(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``masking-async ARGS`` in ``cwd`` against ``url``, no standard input, output captured."""
    return subprocess.run(
        [*COMMAND, *args],
        env=cli_env(url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
