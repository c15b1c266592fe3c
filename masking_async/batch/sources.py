"""Reading input files as streams: CSV with a header, a JSON array of objects, or JSON Lines.

Memory does not grow with the file: CSV and JSON Lines are read line by line, and a JSON array is
decoded one object at a time from a small rolling buffer. Anything malformed — broken quoting,
bad JSON, no header, bytes that are not UTF-8, a field of megabytes — is a :class:`SourceError`
naming the file and the line, never a traceback.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import attrs

from masking_async.errors import MaskingError

__all__ = [
    "FORMATS",
    "MAX_FIELD_BYTES",
    "Format",
    "Row",
    "SourceError",
    "detect_format",
    "read_rows",
]

Format = Literal["csv", "json", "jsonl"]
FORMATS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
#: The largest cell, JSON Lines line or JSON object accepted; no API value comes near it.
MAX_FIELD_BYTES: Final = 128 * 1024
_CHUNK: Final = 64 * 1024


class SourceError(MaskingError):
    """The input file cannot be read as its format; ``line`` is where reading stopped."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}: line {line}: {message}")


@attrs.frozen
class Row:
    """One record of the input: its first line number and its fields as the file gave them."""

    line: int
    fields: dict[str, Any]


def detect_format(path: Path, explicit: str | None = None) -> Format:
    """The format given, or the one the file's extension names."""
    if explicit:
        if explicit not in ("csv", "json", "jsonl"):
            raise SourceError(path, 0, f"unknown format {explicit!r} (csv, json or jsonl)")
        return explicit  # type: ignore[return-value]
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise SourceError(
            path, 0, "cannot tell the format from the extension; use --format csv|json|jsonl"
        ) from None


def read_rows(path: Path, fmt: Format) -> Iterator[Row]:
    """Yield every row of ``path``; raises SourceError where the file stops making sense."""
    try:
        if fmt == "csv":
            yield from _csv_rows(path)
        elif fmt == "jsonl":
            yield from _jsonl_rows(path)
        else:
            yield from _json_rows(path)
    except FileNotFoundError:
        raise SourceError(path, 0, "no such file") from None
    except IsADirectoryError:
        raise SourceError(path, 0, "is a directory, not a file") from None


def csv_header(path: Path) -> list[str]:
    """The CSV header, for writing rows back in the input's own columns."""
    with path.open("rb") as handle:
        return [name.strip() for name in next(csv.reader(_lines(path, handle)), [])]


def _lines(path: Path, handle: BinaryIO) -> Iterator[str]:
    """Decoded lines, each checked on its own so an error names its exact line."""
    for number, raw in enumerate(iter(lambda: handle.readline(MAX_FIELD_BYTES + 1), b""), 1):
        if len(raw) > MAX_FIELD_BYTES and not raw.endswith(b"\n"):
            raise SourceError(path, number, f"line is longer than {MAX_FIELD_BYTES} bytes")
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise SourceError(path, number, "is not UTF-8 text") from None


def _csv_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        reader = csv.reader(_lines(path, handle), strict=True)
        line = 1
        try:
            header = next(reader, None)
            if not header or not any(name.strip() for name in header):
                raise SourceError(path, 1, "no header row (the first line names the columns)")
            names = [name.strip() for name in header]
            if len(set(names)) != len(names) or "" in names:
                raise SourceError(path, 1, "header has an empty or repeated column name")
            line = reader.line_num + 1
            for cells in reader:
                if cells:  # not a blank line
                    if len(cells) != len(names):
                        raise SourceError(
                            path, line, f"has {len(cells)} cells but the header has {len(names)}"
                        )
                    yield Row(line, dict(zip(names, cells, strict=True)))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise SourceError(path, line, f"malformed CSV: {exc}") from None


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        for line, text in enumerate(_lines(path, handle), 1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise SourceError(path, line, f"invalid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise SourceError(path, line, "each line must be a JSON object")
            yield Row(line, value)


def _json_rows(path: Path) -> Iterator[Row]:
    """A JSON array decoded one element at a time with ``raw_decode`` over a rolling buffer."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
    buffer, line, position = "", 1, 0
    started = ended = eof = False
    with path.open("rb") as handle:

        def refill() -> bool:
            nonlocal buffer, eof
            chunk = handle.read(_CHUNK)
            try:
                buffer += text_decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                raise SourceError(path, line, "is not UTF-8 text") from None
            eof = not chunk
            return bool(chunk)

        def skip_space() -> None:
            nonlocal position, line
            while True:
                while position < len(buffer) and buffer[position] in " \t\r\n":
                    line += buffer[position] == "\n"
                    position += 1
                if position < len(buffer) or not refill():
                    return

        while True:
            skip_space()
            if position >= len(buffer):
                if not started:
                    raise SourceError(path, line, "is empty; expected a JSON array of objects")
                raise SourceError(path, line, "the JSON array is not closed with ]")
            char = buffer[position]
            if not started:
                if char != "[":
                    raise SourceError(path, line, "expected a JSON array of objects, [ ... ]")
                started, position = True, position + 1
                skip_space()
                if buffer[position : position + 1] == "]":
                    position += 1
                    ended = True
                    break
                continue
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, position)
                    break
                except ValueError as exc:
                    if len(buffer) - position > MAX_FIELD_BYTES:
                        raise SourceError(
                            path, line, f"object is larger than {MAX_FIELD_BYTES} bytes"
                        ) from None
                    if eof or not refill():
                        raise SourceError(path, line, f"invalid JSON: {exc.args[0]}") from None
            if not isinstance(value, dict):
                raise SourceError(path, line, "each element of the array must be a JSON object")
            yield Row(line, value)
            line += buffer.count("\n", position, end)
            buffer, position = buffer[end:], 0
            skip_space()
            separator = buffer[position : position + 1]
            position += 1
            if separator == "]":
                ended = True
                break
            if separator != ",":
                raise SourceError(path, line, "expected , or ] between array elements")
        if ended:
            skip_space()
            if position < len(buffer):
                raise SourceError(path, line, "unexpected text after the closing ]")
