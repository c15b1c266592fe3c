"""Reading input files as streams: CSV with a header, a JSON array of objects, or JSON Lines.

Memory does not grow with the file: CSV and JSON Lines are read line by line, and JSON is parsed
by ``ijson`` as a stream of events, fed a line (or 64 KiB) at a time so that every record keeps
the line it starts on. Anything malformed — broken quoting, bad JSON, no header, bytes that are
not UTF-8, a field of megabytes, values nested deeper than any API parameter — is a
:class:`SourceError` naming the file and the line, never a traceback.

Files come as spreadsheets and tools write them: a CSV's delimiter (``,`` ``;`` or tab) is
sniffed with :class:`csv.Sniffer` unless given; gzip, bzip2 and xz files are decompressed as they
are read, recognised by their first bytes (so a compressed file with a plain name is read too,
and said so) and their format named by the extension under ``.gz``/``.bz2``/``.xz``. ``-`` is
standard input, read once as it streams in (give its format). Named files must be regular: a
FIFO that nobody writes would block beyond the reach of Ctrl-C.

:data:`REASON_COLUMN`, which a failed file carries beside each row, is dropped on the way in, so
a fixed failed file runs again as it is. :func:`unused_columns` names the session attribute
columns (as ``list`` writes them) that an operation does not send, for the row checks to set
aside.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import itertools
import lzma
import stat
import sys
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import attrs
import ijson

from masking_async import rules, spec
from masking_async.errors import SourceError

__all__ = [
    "COMPRESSED_SUFFIXES",
    "CONTROL_COLUMNS",
    "FORMATS",
    "MAX_DEPTH",
    "MAX_FIELD_BYTES",
    "REASON_COLUMN",
    "STDIN",
    "Format",
    "Row",
    "SourceError",
    "compression",
    "csv_header",
    "detect_format",
    "first_columns",
    "parse_delimiter",
    "read_rows",
    "row_suffix",
    "unused_columns",
]

Format = Literal["csv", "json", "jsonl"]
FORMATS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
#: The largest cell, JSON Lines line or JSON object accepted; no API value comes near it.
#: (A JSON object is measured by the chunks it was read in: refused past 128 KiB + 2 chunks.)
MAX_FIELD_BYTES: Final = 128 * 1024
#: Containers allowed inside one record; API parameters are flat, so 4 is generous.
MAX_DEPTH: Final = 4
#: The column a failed file adds to each row: why it failed. Readers drop it.
REASON_COLUMN: Final = "error"
#: Columns that steer the engine and are never sent to the API.
CONTROL_COLUMNS: Final = ("op", "ref", "session_uuid")
#: Columns only ``list`` output has: a file with all of them holds sessions as they are.
_LIST_SIGNATURE: Final = frozenset({"status", "virtual_number", "created_time"})
_CHUNK: Final = 8 * 1024
_SCALAR_EVENTS: Final = frozenset({"string", "number", "boolean", "null"})
_BOM: Final = b"\xef\xbb\xbf"
#: The path that means standard input.
STDIN: Final = Path("-")
#: Compressed formats: the extension, the first bytes, the name said, the opener.
_COMPRESSED: Final[dict[str, tuple[bytes, str, Callable[[Any], Any]]]] = {
    ".gz": (b"\x1f\x8b", "gzip", lambda raw: gzip.GzipFile(fileobj=raw)),
    ".bz2": (b"BZh", "bzip2", bz2.BZ2File),
    ".xz": (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile),
}
#: The extensions of compressed inputs; the format is named by the one before.
COMPRESSED_SUFFIXES: Final = frozenset(_COMPRESSED)
#: The delimiters sniffed, and those ``--delimiter`` takes (``tab`` names the tab).
_SNIFFED: Final = ",;\t"
_DELIMITERS: Final = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}
#: Lines a delimiter is sniffed from, and at most how much of them.
_SNIFF_LINES: Final = 20
_SNIFF_BYTES: Final = 16 * 1024


@attrs.frozen
class Row:
    """One record: the line it starts on (for people), its fields, and its ordinal.

    ``record`` counts records from 1 and is unique even when a JSON array puts many records on
    one line, so it (not ``line``) is the key to resume by.
    """

    line: int
    fields: dict[str, Any]
    record: int = 0


def detect_format(path: Path, explicit: str | None = None) -> Format:
    """The format given, or the one the file's extension names (under ``.gz`` and the like)."""
    if explicit:
        if explicit not in ("csv", "json", "jsonl"):
            raise SourceError(path, None, f"unknown format {explicit!r} (csv, json or jsonl)")
        return explicit  # type: ignore[return-value]
    if path == STDIN:
        raise SourceError(
            path,
            None,
            "standard input has no extension to tell its format; add --format csv|json|jsonl",
        )
    inner = Path(path.stem) if path.suffix.lower() in COMPRESSED_SUFFIXES else path
    try:
        return FORMATS[inner.suffix.lower()]
    except KeyError:
        pass
    found = None
    with contextlib.suppress(SourceError):
        found = compression(path)
    what = "cannot tell the format from the extension"
    if inner is not path:
        what = f"cannot tell the format inside {path.name} (name it {inner.name}.csv{path.suffix})"
    elif found:
        what += (
            f" ({path.name} is {found}-compressed, recognised by its first bytes; name it"
            f" {path.stem}.csv{_extension(found)})"
        )
    raise SourceError(path, None, f"{what}; use --format csv|json|jsonl")


def _extension(kind: str) -> str:
    return next(ext for ext, (_, name, _) in _COMPRESSED.items() if name == kind)


def compression(path: Path) -> str | None:
    """The compression a regular file's first bytes name (``gzip``, ``bzip2``, ``xz``), if any."""
    if path == STDIN:
        return None
    with _open_file(path) as handle:
        start = handle.read(8)
    return next((name for magic, name, _ in _COMPRESSED.values() if start.startswith(magic)), None)


def row_suffix(path: Path, fmt: Format) -> str:
    """The extension of rows written back in the input's format: the input's own when plain."""
    suffix = path.suffix.lower()
    return path.suffix if FORMATS.get(suffix) == fmt else f".{fmt}"


def parse_delimiter(text: str) -> str:
    """``--delimiter``: one of ``,`` ``;`` ``|``, or a tab (``tab`` or ``\\t``)."""
    try:
        return _DELIMITERS[text if text in _DELIMITERS else text.lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not a delimiter: give , ; | or tab") from None


def unused_columns(op: str | None, columns: Iterable[str]) -> list[str]:
    """Session attribute columns that ``op`` does not send, in the file's order.

    ``list`` writes sessions with every attribute; fed to ``expire`` or ``update``, those
    columns are not mistakes, so they are set aside instead of failing every row. In a file
    written by ``list`` the parties are the current ones, so ``update`` sets them aside too.
    ``run`` (``op`` None) picks the operation per row and sets nothing aside.
    """
    names = list(columns)
    if op == "expire":
        used: Collection[str] = ()
    elif op == "update":
        used = set(rules.UPDATE_FIELDS)
        if set(names) >= _LIST_SIGNATURE:
            used -= {"first_party", "second_party"}
    else:
        return []
    return [
        name
        for name in names
        if name in spec.SESSION_FIELDS and name not in CONTROL_COLUMNS and name not in used
    ]


def read_rows(
    path: Path,
    fmt: Format,
    *,
    delimiter: str | None = None,
    on_columns: Callable[[list[str]], None] | None = None,
) -> Generator[Row, None, None]:
    """Yield every row of ``path``; raises SourceError where the file stops making sense.

    ``on_columns`` is told the columns once, before the first row: the CSV header, or the keys
    of the first JSON record (standard input can be read only once, so no second look).
    """
    told = fmt == "csv"
    rows = (
        _csv_rows(path, delimiter, on_columns)
        if fmt == "csv"
        else _JSONRecords(path, array=fmt == "json").rows()
    )
    for row in rows:
        if REASON_COLUMN in row.fields:
            fields = {k: v for k, v in row.fields.items() if k != REASON_COLUMN}
            row = attrs.evolve(row, fields=fields)
        if not told and on_columns is not None:
            on_columns(list(row.fields))
            told = True
        yield row


def csv_header(path: Path, delimiter: str | None = None) -> list[str]:
    """The CSV header without the reason column, for writing rows back in the input's columns."""
    with _open(path) as handle:
        lines = _lines(path, handle)
        head = list(itertools.islice(lines, _SNIFF_LINES))
        names = next(csv.reader(head, delimiter=delimiter or _sniff(head)), [])
    return [name.strip() for name in names if name.strip() != REASON_COLUMN]


def first_columns(path: Path, fmt: Format, delimiter: str | None = None) -> list[str]:
    """The CSV header, or the keys of the first JSON record (for notes before a run)."""
    if fmt == "csv":
        return csv_header(path, delimiter)
    with contextlib.closing(read_rows(path, fmt)) as rows:
        return list(next(rows, Row(0, {})).fields)


def _open_file(path: Path) -> BinaryIO:
    """Open a regular file; anything else is refused before it can block."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise SourceError(path, None, "is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise SourceError(
                path,
                None,
                "is not a regular file (a pipe, socket or device); give - to read standard"
                " input, or save it to a file first",
            )
        return path.open("rb")
    except FileNotFoundError:
        raise SourceError(path, None, "no such file") from None
    except PermissionError:
        raise SourceError(path, None, "cannot be read: permission denied") from None


@contextlib.contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes, decompressed when its first bytes say gzip, bzip2 or xz."""
    with contextlib.ExitStack() as stack:
        raw: Any = sys.stdin.buffer if path == STDIN else stack.enter_context(_open_file(path))
        start = raw.peek(8)[:8]  # a BufferedReader's look ahead: nothing is consumed
        for magic, _, opener in _COMPRESSED.values():
            if start.startswith(magic):
                raw = stack.enter_context(opener(raw))
                break
        yield raw


def _readline(path: Path, handle: BinaryIO, size: int, line: int) -> bytes:
    """One line of at most ``size`` bytes; damaged compressed data is a SourceError."""
    try:
        return handle.readline(size)
    except (EOFError, lzma.LZMAError, OSError) as exc:
        if not isinstance(handle, (gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile)):
            raise
        kind = {gzip.GzipFile: "gzip", bz2.BZ2File: "bzip2"}.get(type(handle), "xz")
        raise SourceError(
            path, line, f"is {kind}-compressed but the data is damaged or cut short ({exc})"
        ) from None


def _lines(path: Path, handle: BinaryIO) -> Iterator[str]:
    """Decoded lines, each checked on its own so an error names its exact line."""
    for number in itertools.count(1):
        raw = _readline(path, handle, MAX_FIELD_BYTES + 1, number)
        if not raw:
            return
        if len(raw) > MAX_FIELD_BYTES and not raw.endswith(b"\n"):
            raise SourceError(path, number, f"line is longer than {MAX_FIELD_BYTES} bytes")
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise SourceError(path, number, "is not UTF-8 text") from None


def _sniff(head: list[str]) -> str:
    """The delimiter of the first lines: csv.Sniffer's choice among , ; and tab, if the header
    has it; else the one the header holds most of; a header with none is one column (``,``)."""
    header = head[0] if head else ""
    with contextlib.suppress(csv.Error):
        sample = "".join(head)[:_SNIFF_BYTES]  # 20 lines may be 2.5 MB; the start tells
        found = csv.Sniffer().sniff(sample, delimiters=_SNIFFED).delimiter
        if found in header:
            return found
    counts = {candidate: header.count(candidate) for candidate in _SNIFFED}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _csv_rows(
    path: Path, delimiter: str | None, on_columns: Callable[[list[str]], None] | None
) -> Iterator[Row]:
    with _open(path) as handle:
        lines = _lines(path, handle)
        head = list(itertools.islice(lines, _SNIFF_LINES))
        reader = csv.reader(
            itertools.chain(head, lines), delimiter=delimiter or _sniff(head), strict=True
        )
        line = 1
        try:
            header = next(reader, None)
            if not header or not any(name.strip() for name in header):
                raise SourceError(path, 1, "no header row (the first line names the columns)")
            names = [name.strip() for name in header]
            if len(set(names)) != len(names) or "" in names:
                raise SourceError(path, 1, "header has an empty or repeated column name")
            if on_columns is not None:
                on_columns([name for name in names if name != REASON_COLUMN])
            line, record = reader.line_num + 1, 0
            for cells in reader:
                if cells:  # not a blank line
                    if len(cells) != len(names):
                        raise SourceError(
                            path, line, f"has {len(cells)} cells but the header has {len(names)}"
                        )
                    record += 1
                    yield Row(line, dict(zip(names, cells, strict=True)), record)
                line = reader.line_num + 1
        except csv.Error as exc:
            raise SourceError(path, line, f"malformed CSV: {exc}") from None


def _jsonl_rows(path: Path) -> Iterator[Row]:
    return _JSONRecords(path, array=False).rows()


def _json_rows(path: Path) -> Iterator[Row]:
    return _JSONRecords(path, array=True).rows()


def _ijson_message(exc: Exception) -> str:
    """The first line of ijson's message, without yajl's 'parse error:' prefix."""
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    first = str(message).strip().splitlines()[0] if str(message).strip() else "invalid JSON"
    return first.split(" error: ", 1)[-1]


@attrs.define
class _JSONRecords:
    """Records out of ijson's event stream, each with the line it starts on.

    Hand-written only to the extent ijson leaves off: ijson parses (in C when it can) and has no
    notion of lines, so the file is fed to it one line (or 64 KiB) at a time and each record is
    stamped with the line being fed when it opened. Building the record from events keeps a
    depth limit, so a hostile nesting is one error line instead of a ``RecursionError`` later.
    In JSON Lines mode each line must hold exactly one object.
    """

    path: Path
    array: bool
    line: int = 1
    depth: int = 0
    record: int = 0
    stack: list[Any] = attrs.field(factory=list)
    keys: list[str | None] = attrs.field(factory=list)
    start_line: int = 1
    start_byte: int = 0
    fed: int = 0
    chunk_start: int = 0
    seen_text: bool = False
    on_line: int = 0
    done: list[Row] = attrs.field(factory=list)

    @property
    def _base(self) -> int:
        """The depth at which a record opens: inside the array, or at the top of a line."""
        return 1 if self.array else 0

    def _error(self, message: str, line: int | None = None) -> SourceError:
        return SourceError(self.path, line or self.line, message)

    def _record_error(self, message: str, line: int | None = None) -> SourceError:
        """An error in the record being read; in an array its ordinal too (records share lines)."""
        if self.array:
            message = f"record {self.record + 1}: {message}"
        return self._error(message, line)

    def _not_object(self) -> SourceError:
        if self.array:
            return self._record_error("each element of the array must be a JSON object")
        return self._error("each line must be a JSON object")

    def rows(self) -> Iterator[Row]:
        events = ijson.sendable_list()
        parser = ijson.basic_parse_coro(events, use_float=True, multiple_values=not self.array)
        with _open(self.path) as handle:
            for chunk in iter(lambda: _readline(self.path, handle, _CHUNK, self.line), b""):
                if self.fed == 0 and chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM) :]
                self.chunk_start, self.fed = self.fed, self.fed + len(chunk)
                self.seen_text = self.seen_text or bool(chunk.strip())
                self._send(parser, chunk, events)
                if self.stack:
                    self._check_size()
                yield from self.done
                self.done.clear()
                if chunk.endswith(b"\n"):
                    if not self.array and self.stack:
                        raise self._error(
                            "the JSON object does not end on its line (JSON Lines holds one"
                            " object per line)"
                        )
                    self.line, self.on_line = self.line + 1, 0
            self._close(parser, events)
        yield from self.done

    def _send(self, parser: Any, chunk: bytes, events: list[tuple[str, Any]]) -> None:
        try:
            parser.send(chunk)
        except ijson.JSONError as exc:
            self._parse_error(exc)
        except UnicodeDecodeError:  # the pure-Python backend
            raise self._error("is not UTF-8 text") from None
        self._take(events)

    def _close(self, parser: Any, events: list[tuple[str, Any]]) -> None:
        if not self.seen_text:
            if self.array:
                raise self._error("is empty; expected a JSON array of objects")
            return  # empty JSON Lines: no rows
        try:
            parser.close()
        except ijson.JSONError as exc:
            if self.array and self.depth:
                raise self._error(
                    "invalid JSON: the file ends before the array is closed with ]"
                ) from None
            self._parse_error(exc)
        self._take(events)

    def _parse_error(self, exc: Exception) -> None:
        message = _ijson_message(exc)
        if "UTF8" in message or "UTF-8" in message:
            raise self._error("is not UTF-8 text") from None
        if self.array and self.depth == 0 and self.record == 0 and "trailing" not in message:
            raise self._error("expected a JSON array of objects, [ ... ]") from None
        if "trailing garbage" in message:
            raise self._error("unexpected text after the closing ]") from None
        raise self._error(f"invalid JSON: {message}") from None

    def _take(self, events: list[tuple[str, Any]]) -> None:
        """Apply the events; keys and values inside a record (nearly all) take the short path."""
        keys, stack, inside = self.keys, self.stack, self._base + 1
        for event, value in events:
            if event == "map_key":
                if not value or value in stack[-1]:
                    self._bad_key(value)
                keys[-1] = value
            elif event in _SCALAR_EVENTS and self.depth >= inside:
                parent = stack[-1]
                if type(parent) is dict:
                    parent[keys[-1]] = value
                else:
                    parent.append(value)
            else:
                self._event(event, value)
        events.clear()

    def _event(self, event: str, value: Any) -> None:
        base = self._base
        if event in ("start_map", "start_array"):
            if self.depth < base:
                if event != "start_array":
                    raise self._error("expected a JSON array of objects, [ ... ]")
                self.depth += 1
                return
            if self.depth == base:
                if event != "start_map":
                    raise self._not_object()
                self.start_line, self.start_byte = self.line, self.chunk_start
            elif self.depth - base >= MAX_DEPTH:
                raise self._record_error(f"values are nested deeper than {MAX_DEPTH} levels")
            container: Any = {} if event == "start_map" else []
            if self.stack:
                self._attach(container)
            self.stack.append(container)
            self.keys.append(None)
            self.depth += 1
        elif event in ("end_map", "end_array"):
            self.depth -= 1
            if self.depth < base:
                return  # the array itself closed
            finished = self.stack.pop()
            self.keys.pop()
            if not self.stack:
                self._finish(finished)
        elif event == "map_key":
            if not value or value in self.stack[-1]:
                self._bad_key(value)
            self.keys[-1] = value
        elif self.depth <= base:
            if self.depth < base:
                raise self._error("expected a JSON array of objects, [ ... ]")
            raise self._not_object()
        else:
            self._attach(value)

    def _bad_key(self, name: str) -> None:
        """A key JSON allows but a row cannot mean: as CSV refuses such a header, so do we."""
        if not name:
            raise self._record_error("an empty field name is not a known parameter")
        raise self._record_error(f"field {name!r} is repeated (JSON would keep only the last)")

    def _attach(self, value: Any) -> None:
        parent = self.stack[-1]
        if isinstance(parent, dict):
            parent[self.keys[-1]] = value
        else:
            parent.append(value)

    def _check_size(self) -> None:
        if self.fed - self.start_byte > MAX_FIELD_BYTES + 2 * _CHUNK:
            raise self._record_error(
                f"object is larger than {MAX_FIELD_BYTES} bytes", self.start_line
            )

    def _finish(self, fields: dict[str, Any]) -> None:
        self._check_size()
        self.on_line += 1
        if not self.array and self.on_line > 1:
            raise self._error("holds more than one JSON object (JSON Lines: one per line)")
        for name in CONTROL_COLUMNS:
            if isinstance(fields.get(name), (dict, list)):
                raise self._record_error(
                    f"field {name!r} must be a string or a number, not a JSON"
                    f" {'object' if isinstance(fields[name], dict) else 'array'}",
                    self.start_line,
                )
        self.record += 1
        self.done.append(Row(self.start_line, fields, self.record))
