"""From bytes to records: decoding, CSV and JSON Lines, physical line numbers.

Input is read as bytes one physical line at a time and decoded as UTF-8
(a leading byte-order mark, as spreadsheets write, is dropped), so memory
does not grow with the file and an undecodable byte is reported with its line.
A record is ``(line, values)``: ``values`` is a tuple in the order of the
columns asked for (``MISSING`` where a JSON key or the optional CSV column is
absent), or a list of ``RowError`` when the record itself is malformed.

Line numbers are physical lines of the file: the CSV header is line 1; a
quoted CSV field may span lines, and its record takes the number of the line
it starts on. Blank lines are skipped in both formats (a spreadsheet or an
editor often leaves one at the end), but they still count.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, BinaryIO, Protocol

from allocation.management.fields import MISSING

#: No sane line of these files comes close; a longer one is not our file.
MAX_LINE_BYTES = 1 << 20
#: Errors listed in full; beyond that only their number is given.
ERROR_LIMIT = 100

FORMATS = ("csv", "jsonl")

Record = tuple[int, "tuple | list[RowError]"]


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class FileError(Exception):
    """The file cannot be read as asked; the message is one line for the user."""


class InvalidInput(Exception):
    """Rows broke the rules; nothing was written. Carries the errors to list."""

    def __init__(self, errors: ErrorList) -> None:
        self.errors = errors
        noun = "error" if errors.count == 1 else "errors"
        super().__init__(f"{errors.count} {noun}; nothing was written.")


class ErrorList:
    """The first ``ERROR_LIMIT`` errors in line order, and how many there were in all."""

    def __init__(self) -> None:
        self.shown: list[RowError] = []
        self.count = 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.shown) < ERROR_LIMIT:
            self.shown.append(error)

    def merge(self, other: ErrorList) -> None:
        """Both lists hold their first errors by line, so the merge's first ones are right.

        The sort is stable: errors of one line keep the order they were found in.
        """
        self.shown = sorted(self.shown + other.shown, key=lambda error: error.line)[:ERROR_LIMIT]
        self.count += other.count

    def __bool__(self) -> bool:
        return self.count > 0

    def lines(self) -> list[str]:
        lines = [str(error) for error in self.shown]
        if self.count > len(self.shown):
            lines.append(f"... and {self.count - len(self.shown)} more errors")
        return lines


class Progress(Protocol):
    def update(self, n: int) -> object: ...


def decoded_lines(stream: BinaryIO, progress: Progress | None = None) -> Iterator[str]:
    """The stream's physical lines as text, line endings kept (the csv module wants them)."""
    readline = stream.readline
    number = 0
    pending = 0
    while True:
        raw = readline(MAX_LINE_BYTES + 1)
        if not raw:
            break
        number += 1
        if progress is not None:
            pending += len(raw)
            if number % 4096 == 0:
                progress.update(pending)
                pending = 0
        if len(raw) > MAX_LINE_BYTES:
            raise FileError(
                f"line {number}: longer than {MAX_LINE_BYTES} bytes; not a file of rows"
            )
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileError(_not_utf8(number, raw, error)) from None
    if progress is not None and pending:
        progress.update(pending)


def _not_utf8(number: int, raw: bytes, error: UnicodeDecodeError) -> str:
    if number == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return (
            "line 1: the file is UTF-16, not UTF-8; save it as UTF-8 (CSV UTF-8 in a spreadsheet)"
        )
    return (
        f"line {number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at position "
        f"{error.start + 1}); save the file as UTF-8"
    )


def records(
    lines: Iterator[str], fmt: str, columns: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[Record]:
    if fmt == "csv":
        return csv_records(lines, columns, optional)
    if fmt == "jsonl":
        return jsonl_records(lines, columns)
    raise ValueError(f"unknown format {fmt!r}")


def csv_records(
    lines: Iterator[str], columns: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[Record]:
    """Rows of a CSV file whose header names exactly ``columns`` (in any order).

    Columns in ``optional`` may be left out of the header. A file with no
    bytes at all has no rows. Malformed quoting is fatal (the reader cannot
    know where the next record starts), a wrong number of fields is not.
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise FileError(f"line {reader.line_num}: not valid CSV ({error})") from None
    if header is None:
        return
    position = _check_header(header, columns, optional)
    width = len(header)
    pick: Callable[[list[str]], Any]
    if all(position[name] is not None for name in columns):
        pick = itemgetter(*(position[name] for name in columns))
    else:
        indexes = [position[name] for name in columns]

        def pick(row: list[str]) -> tuple[Any, ...]:
            return tuple(MISSING if i is None else row[i] for i in indexes)

    last = reader.line_num
    while True:
        try:
            row = next(reader, None)
        except csv.Error as error:
            # Named by the line the broken record starts on (an unclosed quote
            # is only noticed at the end of the file).
            raise FileError(f"line {last + 1}: not valid CSV ({error})") from None
        if row is None:
            return
        line, last = last + 1, reader.line_num
        if not row:
            continue
        if len(row) != width:
            yield line, [RowError(line, "row", f"expected {width} fields, found {len(row)}")]
        else:
            values = pick(row)
            yield line, values if len(columns) > 1 else (values,)


def _check_header(
    header: list[str], columns: Sequence[str], optional: Sequence[str]
) -> dict[str, int | None]:
    expected = ",".join(columns)
    missing = [name for name in columns if name not in header and name not in optional]
    unknown = [name for name in header if name not in columns]
    repeated = sorted({name for name in header if header.count(name) > 1})
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unknown:
        problems.append("unknown " + ", ".join(_show(name) for name in unknown))
    if repeated:
        problems.append("repeated " + ", ".join(repeated))
    if problems:
        raise FileError(f"line 1: header: expected the columns {expected}; " + "; ".join(problems))
    return {name: (header.index(name) if name in header else None) for name in columns}


def jsonl_records(lines: Iterator[str], columns: Sequence[str]) -> Iterator[Record]:
    """One JSON object per line, with keys among ``columns``."""
    known = frozenset(columns)
    for line, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as error:
            yield (
                line,
                [RowError(line, "row", f"not valid JSON ({error.msg} at column {error.colno})")],
            )
            continue
        except (ValueError, RecursionError):
            yield line, [RowError(line, "row", "not valid JSON")]
            continue
        if not isinstance(value, dict):
            yield line, [RowError(line, "row", "expected a JSON object")]
            continue
        unknown = [key for key in value if key not in known]
        if unknown:
            expected = ", ".join(columns)
            yield (
                line,
                [
                    RowError(line, _show(key), f"unknown field; expected {expected}")
                    for key in unknown
                ],
            )
            continue
        yield line, tuple(value.get(name, MISSING) for name in columns)


def _show(name: str) -> str:
    """A column or key name as it can be printed on one line."""
    text = json.dumps(name) if not name.isprintable() or not name or name != name.strip() else name
    return text if len(text) <= 60 else text[:57] + "..."
