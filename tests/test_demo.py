"""The README's main command: the demo runs the whole job against its embedded emulator."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_demo_runs_the_main_job(tmp_path: Path) -> None:
    """Create, list, update and expire a batch at a rate limit, with no 429 and exit status 0."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "masking_async",
            "demo",
            "--sessions",
            "60",
            "--rate",
            "120/1s",
            "--workdir",
            str(tmp_path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "[4/4] expire every active session" in done.stderr
    assert "60 active sessions" in done.stderr
    assert "0 answered 429" in done.stderr
    created = [json.loads(line) for line in (tmp_path / "created.jsonl").read_text().splitlines()]
    assert len(created) == 60
    assert all(r["outcome"] == "ok" for r in created)
    expired = (tmp_path / "expired.jsonl").read_text().splitlines()
    assert len(expired) == 60


def test_demo_stopped_gives_its_own_advice(tmp_path: Path) -> None:
    """Ctrl-C during the demo: exit 130 and advice to run the demo again, no --journal to use."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masking_async",
            "demo",
            "--sessions",
            "500",
            "--rate",
            "20/1s",
            "--workdir",
            str(tmp_path),
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "created.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the results file opens once rows are about to be sent
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "the demo was stopped" in err
    assert "run masking-async demo again" in err
    assert "--journal" not in err
    assert "Traceback" not in err
