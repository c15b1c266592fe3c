"""docs/callbacks.md's example runs as written and prints what the page says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "callbacks.md"


def test_the_complete_example_runs() -> None:
    """The page's runnable example prints in-progress, then the call's eight events in order."""
    blocks = re.findall(r"```python\n(.+?)\n```", DOC.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "asyncio.run(main())" in block]
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "status: in-progress",
        "status: active legs: 2",
        "1 SessionFirstPartyAnswer",
        "2 SessionSecondPartyRing",
        "3 SessionSecondPartyAnswer",
        "4 SessionRecordingInitiated",
        "5 SessionFirstPartyHangup",
        "6 SessionRecordingCompleted",
        "7 SessionSecondPartyHangup",
        "8 SessionPartiesHangup",
    ]
