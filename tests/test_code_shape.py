"""The code's shape: short functions that each do one job.

A function over :data:`MAX_LINES` lines (from its ``def`` to its last line, nested functions
included) is doing several jobs; split it into functions named for what they do. The only
exceptions are the command line's argument tables, which are long lists of options and nothing
else, and the entries of :data:`ALLOWED` below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import masking_async

MAX_LINES = 80
PACKAGE = Path(masking_async.__file__).parent

#: (folder or file under masking_async/, function name) allowed to be longer than MAX_LINES.
ALLOWED = {
    # The command line's argument tables: one add_argument after another.
    ("cli", "register"),
}


def _long_functions() -> list[tuple[str, str, int]]:
    """Every function longer than MAX_LINES as (path under the package, name, lines)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    found.append((relative, node.name, lines))
    return found


def _exception_for(relative: str, name: str) -> tuple[str, str] | None:
    """The entry of ALLOWED that covers this function, if any."""
    for place, allowed_name in ALLOWED:
        if name == allowed_name and (relative == place or relative.startswith(place + "/")):
            return place, allowed_name
    return None


def test_no_function_is_too_long() -> None:
    """No function outside the argument tables is longer than 80 lines."""
    too_long = [
        f"masking_async/{relative}: {name} has {lines} lines"
        for relative, name, lines in _long_functions()
        if _exception_for(relative, name) is None
    ]
    assert not too_long, f"split these into functions of at most {MAX_LINES} lines: {too_long}"


def test_every_exception_is_still_needed() -> None:
    """An exception whose function has become short is removed from the list."""
    used = {_exception_for(relative, name) for relative, name, _ in _long_functions()}
    assert used == ALLOWED, f"remove these exceptions, they no longer apply: {ALLOWED - used}"
