"""The curl examples of docs/emulator.md run as written against a real emulator process."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from masking_async.emulator.process import emulator_process

DOC = Path(__file__).resolve().parents[1] / "docs" / "emulator.md"
DOC_URL = "http://127.0.0.1:8180"


def _control_plane_script() -> str:
    """The sh block of the control-plane section, without the line that starts the emulator."""
    section = DOC.read_text().split("## Control plane", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = block.group(1).splitlines()
    assert lines[0].startswith("masking-async emulator")
    return "\n".join(lines[1:])


def _answers(output: str) -> list[Any]:
    decoder, answers, position = json.JSONDecoder(), [], 0
    while position < len(output):
        if output[position].isspace():
            position += 1
            continue
        answer, position = decoder.raw_decode(output, position)
        answers.append(answer)
    return answers


def test_the_control_plane_curl_examples_work(tmp_path):
    """Every curl line of the control-plane example answers JSON, and none answers an error."""
    script = _control_plane_script()
    with emulator_process("--clock", "manual") as url:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script.replace(DOC_URL, url)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    answers = _answers(done.stdout)
    assert len(answers) == script.count("curl ") - 1  # the snapshot goes to a file
    assert not [a for a in answers if "error" in a]
    expired = answers[2]["response"]["objects"]
    assert [o["status"] for o in expired] == ["expired"]
    assert json.loads((tmp_path / "snapshot.json").read_text())["version"] == 1
