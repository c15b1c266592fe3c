"""Every `masking-async` command line shown in README.md and docs/ is one the parser accepts.

The ``sh run`` blocks run against an emulator (tests/test_docs.py); the others (a Redis on
another host, a server left running, minutes of load) cannot run here, so each of their command
lines is at least parsed as written: an option renamed or removed fails this test, not a reader.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from masking_async.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```(sh[^\n]*)\n(.*?)^```", re.M | re.S)


_SEPARATORS = frozenset({"|", "||", "&&", "&", ";", "(", ")"})


def _commands_in(text: str) -> list[list[str]]:
    """The simple commands of a shell text, as words (pipes, ``&&``, ``&``, comments apart)."""
    commands: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        if "masking-async" not in line:
            continue  # (a curl call may quote a JSON body over several lines)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in _SEPARATORS:
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
    return commands


def _command_lines() -> list[tuple[str, list[str]]]:
    found = []
    for page in PAGES:
        for block in _BLOCK.finditer(page.read_text()):
            for words in _commands_in(block.group(2)):
                if words[0].endswith("masking-async"):
                    found.append((f"{page.name}: {shlex.join(words)}", words[1:]))
    return found


COMMANDS = _command_lines()


def test_the_docs_show_command_lines() -> None:
    """The collector finds the pages' examples (so an empty list cannot pass for success)."""
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_each_command_line_parses(where: str, argv: list[str]) -> None:
    """The example's arguments are accepted by the command's parser as written."""
    if argv in (["--help"], ["--version"]) or not argv:
        return
    # The shell would put the emulator's root here, as the docs tests' environment sets it.
    argv = [word.replace("$MASKING_ASYNC_BASE_URL", "http://127.0.0.1:8180") for word in argv]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's usage error
        pytest.fail(f"{where}: exit {exc.code}")
