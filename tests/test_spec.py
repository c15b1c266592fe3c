"""The API's facts live in ``masking_async.spec`` only: the table is coherent, and no other module
of the package writes one of its facts as a literal (issue 20, item 1)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import masking_async
from masking_async import rules, spec
from masking_async.models import Session

PACKAGE = Path(masking_async.__file__).parent

# -- the table ---------------------------------------------------------------------------------


def test_session_model_has_exactly_the_session_fields() -> None:
    """models.Session has every field spec names for a session object, and two of its own."""
    names = {a.name for a in attrs.fields(Session)}
    assert names == spec.SESSION_FIELDS | {"extra", "unreadable"}


def test_every_echo_name_is_a_session_field() -> None:
    """An argument's echo name is a field of the session object (or None: not echoed)."""
    for param in spec.PARAMS.values():
        assert param.echoed_as is None or param.echoed_as in spec.SESSION_FIELDS, param.name


@pytest.mark.parametrize("param", spec.PARAMS.values(), ids=lambda p: p.name)
def test_each_argument_is_described_for_its_kind(param: spec.Param) -> None:
    """Integers have bounds holding their default, choices name their values, patterns are set."""
    if param.kind == "integer":
        low, high = spec.bounds(param.name)
        assert low <= high
        assert isinstance(param.default, int)
        assert low <= param.default <= high
    else:
        assert param.bounds is None
        assert not param.clamped
        with pytest.raises(ValueError, match="not an integer"):
            spec.bounds(param.name)
    assert bool(param.choices) == (param.kind == "choice")
    assert (param.pattern is not None) == (param.kind in ("pin", "subaccount"))
    if param.choices and param.default is not None:
        assert param.default in param.choices


def test_rules_are_derived_from_the_table() -> None:
    """rules' field maps name exactly the table's arguments, in its order, by update rule."""
    assert list(rules.CREATE_FIELDS) == list(spec.PARAMS)
    assert list(rules.UPDATE_FIELDS) == list(spec.UPDATE_PARAMS)
    refused = {n for n, p in spec.PARAMS.items() if p.on_update is spec.OnUpdate.REFUSED}
    assert refused == rules.IMMUTABLE_ON_UPDATE
    assert not refused & set(spec.UPDATE_PARAMS)
    assert set(spec.LEGACY_CREATE_PARAMS) <= set(spec.PARAMS)
    assert rules.MAX_PAGE_SIZE == spec.PAGE_SIZE


def test_paths_are_templates_of_the_collection() -> None:
    """A session's path is its collection's plus the id; both take the account as a field."""
    assert spec.SESSION_PATH.startswith(spec.SESSION_COLLECTION)
    path = spec.SESSION_PATH.format(auth_id="MA1", session_uuid="u")
    assert path == "/v1/Account/MA1/Masking/Session/u/"
    assert spec.DOCUMENTED_RATE.text == "300/5s"


# -- no fact written twice ---------------------------------------------------------------------

#: Literals that look like one of spec's facts but are something else, by (module, scope, value):
#: each says why. ``scope`` is the innermost function, class or assigned name around the literal.
ALLOWED: dict[tuple[str, str, object], str] = {
    # How many changed rows a resumed journal names before it stops listing them: output length.
    ("batch/intake.py", "scan", 20): "rows of a report shown",
    # How many invalid rows of the desired file `sync` names before it gives up: output length.
    ("batch/sync.py", "_SHOWN", 20): "rows of a report shown",
    # The retry budget's floor (retries always allowed per 10 s window): not a page.
    ("client/_options.py", "RetryPolicy.budget_floor", 20): "retry budget",
    # 2xx means delivered: the end of the HTTP success range, not the request rate.
    ("emulator/calls/delivery.py", "Outbox._attempt", 300): "HTTP status range",
    # Seconds per hour, to print a timeout in hours.
    ("cli/_common.py", "positive_seconds", 3600): "seconds in an hour",
    # Lines read to guess a file's delimiter: how much of a file to look at, not a page.
    ("batch/sources.py", "_SNIFF_LINES", 20): "lines sniffed",
}

#: Integers that are facts of the API: the page size, the rate's count, the legacy defaults, the
#: upper bound of session_expiry and call_time_limit, and the defaults of both (an hour).
FORBIDDEN_NUMBERS = {
    spec.PAGE_SIZE,
    spec.DOCUMENTED_RATE.requests,
    *spec.LEGACY_DEFAULTS.values(),
    spec.bounds("session_expiry")[1],
    spec.PARAMS["session_expiry"].default,
    int(spec.MAX_LIST_WINDOW.total_seconds()),
}
#: Text that is a fact of the API (never in docstrings, which may explain the facts in words).
FORBIDDEN_TEXT = {
    "the documented rate": re.escape(spec.DOCUMENTED_RATE.text),
    "the documented rate in words": r"\b300 requests per 5\b",
    "the list window in words": rf"\b{spec.MAX_LIST_WINDOW.days}[ -]days?\b",
    "the session path": r"Masking/Session",
    "the legacy session path": r"/Session(/|$)",
    "the PIN pattern": re.escape(spec.PIN_PATTERN),
    "the subaccount pattern": re.escape(spec.SUBACCOUNT_PATTERN),
    "the version": rf"(?<![\w.]){re.escape(masking_async.__version__)}(?![\w.])",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _literals(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every node with the dotted name of its innermost class, function or assigned name."""

    def visit(node: ast.AST, scope: tuple[str, ...]) -> Iterator[tuple[str, ast.AST]]:
        yield ".".join(scope), node
        inner = scope
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            inner = (*scope, node.name)
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if names:
                inner = (*scope, names[0])
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(tree, ())


def _is_days_30(node: ast.AST) -> bool:
    return isinstance(node, ast.keyword) and (
        node.arg == "days"
        and isinstance(node.value, ast.Constant)
        and node.value.value == spec.MAX_LIST_WINDOW.days
    )


def _scan(source: str) -> Iterator[tuple[str, object, str]]:
    """Each literal in ``source`` that writes a fact of spec: ``(scope, value, what)``."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    for scope, node in _literals(tree):
        if _is_days_30(node):
            yield scope, "days", "the list window as timedelta(days=...)"
        if not isinstance(node, ast.Constant) or id(node) in docstrings:
            continue
        value = node.value
        # Floats are durations and shares, never one of these facts.
        if type(value) is int and value in FORBIDDEN_NUMBERS:
            yield scope, value, f"line {node.lineno}: {value!r} is a fact of spec"
        elif isinstance(value, str):
            for fact, pattern in FORBIDDEN_TEXT.items():
                if re.search(pattern, value):
                    yield scope, value, f"line {node.lineno}: {value!r} writes {fact}"


def _modules() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module != "spec.py":
            yield module, path.read_text(encoding="utf-8")


def test_no_fact_of_the_api_is_written_outside_spec() -> None:
    """Page size, rate, windows, defaults, paths, patterns and version come from spec alone."""
    found = [
        f"{module} ({scope or 'module'}) {what}"
        for module, source in _modules()
        for scope, value, what in _scan(source)
        if (module, scope, value) not in ALLOWED
    ]
    assert found == []


def test_the_scan_sees_what_it_forbids() -> None:
    """The scan itself works: each kind of repeated fact in a sample is reported, docstrings not."""
    sample = '''
"""Docstrings may say 300/5s and 20 per page."""
from datetime import timedelta
PAGE = 20
WINDOW = timedelta(days=30)
RATE = "300/5s"
PATH = f"/v1/Account/{auth_id}/Masking/Session/"
'''
    assert [(scope, value) for scope, value, _ in _scan(sample)] == [
        ("PAGE", 20),
        ("WINDOW", "days"),
        ("RATE", "300/5s"),
        ("PATH", "/Masking/Session/"),
        ("PATH", "/Masking/Session/"),
    ]


def test_the_allow_list_is_still_needed() -> None:
    """Every allowed literal is still in its place (an entry left behind would hide a new one)."""
    seen = {
        (module, scope, value) for module, source in _modules() for scope, value, _ in _scan(source)
    }
    assert set(ALLOWED) <= seen
