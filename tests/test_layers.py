"""The package's layers, read from its import graph (issue 20, item 4; STYLE.md practice 16).

A *part* is a subpackage: client, batch, emulator, load, cli, callbacks. What one part offers
another is public: a part never imports another part's private module (a name starting with
``_``), and the client and the emulator, which serve opposite ends of the API, never import each
other; they share only the neutral modules beneath both (spec, rules, wire, rates, errors, ...).
The graph is read with ``ast`` from the source, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import masking_async

PACKAGE = Path(masking_async.__file__).parent
PARTS = frozenset({"client", "batch", "emulator", "load", "cli", "callbacks"})
#: Parts that must not import each other, in either direction.
APART = frozenset({"client", "emulator"})
#: Exceptions to the rules, as (importing file, imported module): each says why. None today.
ALLOWED: dict[tuple[str, str], str] = {}


def _part(dotted: str) -> str | None:
    """The part a dotted module name belongs to (``masking_async.client._x`` → ``client``)."""
    names = dotted.split(".")
    if names[0] != "masking_async" or len(names) < 2:
        return None
    return names[1] if names[1] in PARTS else None


def _module_of(path: Path, root: Path = PACKAGE) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _imports(path: Path, root: Path = PACKAGE) -> Iterator[tuple[int, str]]:
    """Every module a file imports, as absolute dotted names (``from a import b`` gives ``a``
    and ``a.b``, since ``b`` may be a module)."""
    package = _module_of(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _breaches(root: Path = PACKAGE) -> Iterator[str]:
    for path in sorted(root.rglob("*.py")):
        here = _part(_module_of(path, root))
        for line, target in _imports(path, root):
            there = _part(target)
            if there is None or there == here or here is None:
                continue
            where = f"{path.relative_to(root)}:{line} imports {target}"
            if (path.relative_to(root).as_posix(), target) in ALLOWED:
                continue
            inside = target.split(".")[2:]
            if any(name.startswith("_") and not name.startswith("__") for name in inside):
                yield f"{where}: private to {there}; export what is needed from its __init__"
            if {here, there} == APART:
                yield f"{where}: the client and the emulator do not import each other"


def test_no_part_imports_another_parts_private_module_and_client_emulator_stay_apart() -> None:
    """No cross-part import of a ``_module``, and none at all between client and emulator."""
    assert list(_breaches()) == []


def test_the_floor_imports_no_part() -> None:
    """The neutral modules (spec, rules, wire, rates, errors, ...) sit beneath every part: none
    imports a part, so a part never reaches another through them. The package root and
    ``__main__`` are the front doors, not the floor."""
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        parts = {_part(target) for _, target in _imports(path)} - {None}
        assert not parts, f"{path.name} imports {sorted(p for p in parts if p)}"


def test_the_check_finds_each_kind_of_breach(tmp_path: Path) -> None:
    """Absolute, relative, in-function and from-package imports of a private module are caught,
    and so is any import between client and emulator (so the test above can fail)."""
    root = tmp_path / "masking_async"
    for part in ("client", "emulator", "batch", "cli"):
        (root / part).mkdir(parents=True)
        (root / part / "__init__.py").write_text("")
    (root / "spec.py").write_text("")
    (root / "emulator" / "config.py").write_text(
        "from masking_async import spec\n"
        "from masking_async.client._options import MAX\n"  # private, and client<->emulator
    )
    (root / "batch" / "run.py").write_text(
        "from ..client import _adoption\n"  # relative, a private module by name
        "def late():\n    import masking_async.cli._common\n"  # inside a function
    )
    (root / "batch" / "fine.py").write_text("from masking_async.client import create_lane\n")
    (root / "client" / "_x.py").write_text("from masking_async.emulator import Emulator\n")
    found = list(_breaches(root))
    assert [line.split(": ", 1)[0] for line in found] == [
        "batch/run.py:1 imports masking_async.client._adoption",
        "batch/run.py:3 imports masking_async.cli._common",
        "client/_x.py:1 imports masking_async.emulator",
        "client/_x.py:1 imports masking_async.emulator.Emulator",
        "emulator/config.py:2 imports masking_async.client._options",
        "emulator/config.py:2 imports masking_async.client._options",
        "emulator/config.py:2 imports masking_async.client._options.MAX",
        "emulator/config.py:2 imports masking_async.client._options.MAX",
    ]


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_is_a_package(part: str) -> None:
    """Every part named here exists, so a renamed part cannot slip out of the check."""
    assert (PACKAGE / part / "__init__.py").is_file()


def test_exceptions_are_still_needed() -> None:
    """Every allowed exception still names an import that is there."""
    for (file, target), why in ALLOWED.items():
        assert why
        assert target in {t for _, t in _imports(PACKAGE / file)}, (file, target)
