"""The documentation runs: the marked code blocks of README.md and docs/*.md are executed here.

Sybil finds the fenced blocks; the info string says what to do with each:

- ``sh run``: run by ``bash -e`` in a scratch folder that holds ``pairs.csv`` and
  ``changes.jsonl``, against an emulator in a child process. A line exporting placeholder
  credentials (``export PLIVO_AUTH_ID=MA...``) is left out: the suite supplies the emulator's.
- ``python run``: run with top-level ``await`` allowed, in the same folder and environment.
- ``python pytest``: written to a test file in an empty folder and run by pytest there, with no
  project configuration, so the example must be complete as shown.

Every other ``python`` block must at least compile, and every page keeps at least one block
that runs, so an example can drift neither in syntax nor in behaviour.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process
from masking_async.phones import party_pairs

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages whose examples can run on a test machine (load and benchmark runs are minutes long).
RUNNABLE_PAGES = [
    ROOT / "README.md",
    *(ROOT / "docs" / f for f in ("architecture.md", "batch.md", "client.md", "emulator.md")),
]
_PLACEHOLDER_EXPORT = re.compile(r"^\s*export\s+PLIVO_AUTH_\w+=.*\.\.\..*$", re.M)


def _shell(example: Example) -> None:
    script = _PLACEHOLDER_EXPORT.sub("", example.parsed)
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=example.namespace["workdir"],
        env=example.namespace["env"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"{example.path}:{example.line}\n{done.stdout}\n{done.stderr}"


def _python(example: Example) -> None:
    code = compile(
        example.parsed,
        f"{example.path}:{example.line}",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    result = eval(code, namespace)  # the example is the project's own documentation
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def _pytest(example: Example) -> None:
    folder: Path = example.namespace["workdir"]
    (folder / "test_doc_example.py").write_text(example.parsed)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_doc_example.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{example.path}:{example.line}\n{done.stdout}\n{done.stderr}"


def _compiles(example: Example) -> None:
    compile(example.parsed, f"{example.path}:{example.line}", "exec", ast.PyCF_ONLY_AST)


SYBIL = Sybil(
    parsers=[
        CodeBlockParser("sh run", _shell),
        CodeBlockParser("python run", _python),
        CodeBlockParser("python pytest", _pytest),
        CodeBlockParser("python", _compiles),
    ]
)


def _examples() -> Iterator[Any]:
    for page in PAGES:
        for example in SYBIL.parse(page).examples():
            kind = example.region.lexemes["arguments"]
            name = f"{page.relative_to(ROOT)}:{example.line}:{kind.replace(' ', '-')}"
            yield pytest.param(example, id=name)


EXAMPLES = list(_examples())


def _fixtures(folder: Path) -> None:
    """The files the examples name: pairs to create, a file of operations, and the first rows
    of the spreadsheet export in tests/data."""
    orders = (ROOT / "tests" / "data" / "orders.csv").read_text().splitlines(keepends=True)
    (folder / "orders.csv").write_text("".join(orders[:6]))
    pairs = list(party_pairs(6, countries=("US", "GB"), start=5000))
    (folder / "pairs.csv").write_text(
        "ref,first_party,second_party\n"
        + "".join(f"order-{i},{a},{b}\n" for i, (a, b) in enumerate(pairs[:4]))
    )
    (folder / "changes.jsonl").write_text(
        "".join(
            json.dumps({"op": "create", "ref": f"c{i}", "first_party": a, "second_party": b}) + "\n"
            for i, (a, b) in enumerate(pairs[4:])
        )
    )


@pytest.fixture
def doc_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A scratch folder with the fixtures and an environment pointing at a fresh emulator."""
    _fixtures(tmp_path)
    with emulator_process() as url:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PLIVO_AUTH_ID": DEFAULT_AUTH_ID,
            "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "MASKING_ASYNC_BASE_URL": url,
        }
        for name in ("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN", "MASKING_ASYNC_BASE_URL"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.chdir(tmp_path)
        yield {"workdir": tmp_path, "env": env}


@pytest.mark.parametrize("example", EXAMPLES)
def test_doc_example(example: Example, request: pytest.FixtureRequest) -> None:
    """The block runs as written (or, for a plain python block, compiles)."""
    if example.region.lexemes["arguments"] != "python":  # only compiling needs no server
        example.namespace.update(request.getfixturevalue("doc_folder"))
    example.evaluate()


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: p.name)
def test_each_page_has_a_block_that_runs(page: Path) -> None:
    """Every page keeps at least one example that the suite runs, not only compiles."""
    kinds = {example.region.lexemes["arguments"] for example in SYBIL.parse(page).examples()}
    assert kinds & {"sh run", "python run", "python pytest"}, page
