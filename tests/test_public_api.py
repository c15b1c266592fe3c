"""The public surface stays curated: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import masking_async
import masking_async.batch
import masking_async.callbacks
import masking_async.client
import masking_async.emulator
from masking_async import errors

PACKAGE = Path(masking_async.__file__).parent


def test_all_names_exist_and_are_sorted() -> None:
    """Every exported name resolves, and the lists are kept in order."""
    for module in (masking_async, masking_async.client, masking_async.emulator):
        assert all(hasattr(module, name) for name in module.__all__)
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))


def test_errors_share_one_base() -> None:
    """Every error class exported derives from MaskingError, so one except catches them all."""
    errors = [getattr(masking_async, n) for n in masking_async.__all__ if n.endswith("Error")]
    assert errors
    assert all(issubclass(e, masking_async.MaskingError) for e in errors)


def test_every_part_names_its_surface_sorted_and_importable() -> None:
    """batch and callbacks keep a curated ``__all__`` too (what the other parts may use)."""
    for module in (masking_async.batch, masking_async.callbacks):
        assert all(hasattr(module, name) for name in module.__all__)
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))


def _error_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, ast.Name) and b.id.endswith(("Error", "Locked")) for b in node.bases)
    }


def test_every_masking_error_is_defined_in_the_error_tree() -> None:
    """No module but errors.py defines a MaskingError (issue 20: errors outside the tree)."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                assert not bases & set(errors.__all__), f"{path}: {node.name} outside errors.py"


def test_each_error_is_drawn_documented_and_exported() -> None:
    """Every error in errors.py is in its docstring's tree, says when it is raised (or what it
    means, for the client's own), and is exported from masking_async (UsageError is the CLI's)."""
    source = Path(errors.__file__).read_text(encoding="utf-8")
    tree_text = errors.__doc__ or ""
    classes = [name for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert set(classes) == set(_error_classes(ast.parse(source))) | {"MaskingError"}
    for name in classes:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.MaskingError)
        assert re.search(rf"\b{name}\b", tree_text), f"{name} is not drawn in the tree"
        assert (cls.__doc__ or "").strip(), f"{name} says nothing"
        if name != "UsageError":
            assert getattr(masking_async, name) is cls, f"{name} is not exported"
    assert "UsageError" not in masking_async.__all__
    assert masking_async.OutcomeUnknownError is errors.OutcomeUnknownError
