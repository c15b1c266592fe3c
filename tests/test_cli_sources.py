"""The input readers, by property: any file of records reads back as the same records and lines."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from masking_async.batch.sources import REASON_COLUMN, Format, read_rows

# An empty key is refused (as an empty CSV column name is): see the error corpus.
_KEYS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
).filter(lambda key: key != REASON_COLUMN)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=20)
)
_RECORDS = st.lists(st.dictionaries(_KEYS, _SCALARS, max_size=5), max_size=12)


def _read(text: str, fmt: Format) -> list[tuple[int, int, dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"rows.{fmt}"
        path.write_text(text, encoding="utf-8")
        return [(row.line, row.record, row.fields) for row in read_rows(path, fmt)]


@settings(max_examples=60, deadline=None)
@given(records=_RECORDS, indent=st.sampled_from([None, 0, 2]))
def test_a_json_array_reads_back_with_each_records_first_line(
    records: list[dict[str, Any]], indent: int | None
) -> None:
    """A JSON array, on one line or pretty-printed: same records, ordinals 1..n, start lines."""
    if indent is None:
        text, lines = json.dumps(records), [1] * len(records)
    else:
        parts = [json.dumps(record, indent=indent) for record in records]
        text = "[\n" + ",\n".join(parts) + "\n]\n"
        lines, line = [], 2
        for part in parts:
            lines.append(line)
            line += part.count("\n") + 1
    expected = [
        (line, n, record) for n, (line, record) in enumerate(zip(lines, records, strict=True), 1)
    ]
    assert _read(text, "json") == expected


@settings(max_examples=60, deadline=None)
@given(records=_RECORDS, blank=st.booleans())
def test_json_lines_read_back_with_their_lines(records: list[dict[str, Any]], blank: bool) -> None:
    """JSON Lines, blank lines between or not: same records, each with its own line."""
    separator = "\n\n" if blank else "\n"
    text = separator.join(json.dumps(record) for record in records) + "\n"
    step = 2 if blank else 1
    expected = [(1 + step * i, i + 1, record) for i, record in enumerate(records)]
    assert _read(text, "jsonl") == expected


_CELLS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\x00"),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_CELLS, _CELLS), max_size=10))
def test_csv_reads_back_with_each_rows_first_line(rows: list[tuple[str, str]]) -> None:
    """CSV with quoting and line breaks inside cells: same cells, the line each row starts on."""
    rows = [row for row in rows if any(row)]  # a row of empty cells is a blank line
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    expected, line = [], 2
    for n, (a, b) in enumerate(rows, 1):
        expected.append((line, n, {"a": a, "b": b}))
        line += 1 + a.count("\n") + b.count("\n")
    assert _read(buffer.getvalue(), "csv") == expected
