"""Reading official CSV exports: encoding detection (UTF-8 with/without BOM, else cp949) and streaming rows.

A file is read whole or not at all: a NUL byte, a quoted field still open at the end of the file, or a last
row with fewer fields than the header (a download or copy cut short) fail the whole file with ``ImportFailed``
naming the row (and column); importers run inside one transaction, so nothing is written. A row in the middle
with the wrong number of fields is skipped and reported by the importer (``field_count_problem``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from geo.errors import ImportFailed
from geo.ingest.report import ImportResult

ENCODINGS = ("utf-8-sig", "cp949")


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8, else ``cp949`` (Korean public exports)."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFailed(f"{path.name}: neither UTF-8 nor cp949 text")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (recorded with every import)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def open_csv(path: Path, *, required: Iterable[str] = (), coordinates: Sequence[tuple[str, str]] = (),
             kind: str = "CSV") -> Iterator[tuple[list[str], Any, Callable[[], int]]]:
    """Open a CSV export: yields its header, a ``csv.reader`` over the data rows and a callable giving the byte
    position reached (for progress bars).

    Raises ``ImportFailed`` when the file cannot be read, is empty, is not CSV, or lacks ``required`` columns
    or every one of the alternative (latitude, longitude) ``coordinates`` pairs (the message names them; for
    the coordinates, the first pair).
    """
    required = list(required)
    try:
        encoding = detect_encoding(path)
        raw = path.open("rb")
    except OSError as exc:
        raise ImportFailed(f"{path.name}: cannot read file ({exc.strerror or exc})") from exc
    with raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as fh:
        # strict: a quoted field still open at the end of the file is an error, not a silently closed row.
        reader = csv.reader(fh, strict=True)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ImportFailed(f"{path.name}: empty file", missing_columns=required) from None
        except csv.Error as exc:
            raise ImportFailed(f"{path.name}: not a CSV file ({exc})") from exc
        missing = [c for c in required if c not in header]
        if coordinates and not any(lat in header and lon in header for lat, lon in coordinates):
            missing += [c for c in coordinates[0] if c not in header]
        if missing:
            raise ImportFailed(f"{path.name}: not a {kind} file, missing required column(s) {', '.join(missing)}",
                               missing_columns=missing)
        yield header, reader, raw.tell


def data_rows(header: list[str], reader: Iterable[list[str]], *, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(row_number, values)`` of the data rows (the header is row 1, as in a spreadsheet), checked for
    truncation and NUL bytes; blank lines are skipped.

    Raises
    ------
    ImportFailed
        A NUL byte (row and column named), a quoted field open at the end of the file, a last row with fewer
        fields than the header, or any other CSV syntax error (row named).
    """
    rows = iter(reader)
    number = 1
    pending: tuple[int, list[str]] | None = None
    while True:
        try:
            values = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            at = number + 1
            if "unexpected end of data" in str(exc):
                raise ImportFailed(f"{name}: the file ends inside a quoted field that starts in row {at} "
                                   "(cut short?); nothing was imported", row=at) from exc
            raise ImportFailed(f"{name}: malformed CSV in row {at} ({exc}); nothing was imported", row=at) from exc
        number += 1
        for i, value in enumerate(values):
            if "\x00" in value:
                column = header[i] if i < len(header) else f"field {i + 1}"
                raise ImportFailed(f"{name}: row {number}, column {column}: NUL byte (binary data in a text "
                                   "file); nothing was imported", row=number, column=column)
        if pending is not None:
            yield pending
        pending = (number, values) if any(v.strip() for v in values) else None
    if pending is not None:
        last_number, values = pending
        if len(values) < len(header):
            raise ImportFailed(f"{name}: the last row ({last_number}) has {len(values)} of {len(header)} fields: "
                               "the file is cut short; nothing was imported", row=last_number)
        yield pending


def field_count_problem(header: list[str], values: list[str]) -> str | None:
    """Why a row does not fit the header (wrong number of fields), or None."""
    if len(values) != len(header):
        return f"{len(values)} fields where the header has {len(header)}"
    return None


def iter_rows(header: list[str], reader: Iterable[list[str]], *, name: str,
              result: ImportResult) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row_number, row)`` with stripped values (see ``data_rows``); rows with the wrong number of fields are
    counted as read and reported as skipped in ``result``."""
    for number, values in data_rows(header, reader, name=name):
        problem = field_count_problem(header, values)
        if problem:
            result.rows_read += 1
            result.skip(number, problem)
            continue
        yield number, {h: values[i].strip() for i, h in enumerate(header)}


def parse_int(value: str) -> int:
    """An integer from a Korean export cell ('1,234', ' 12 ', '12.0'); raises ValueError when not a number."""
    cleaned = value.replace(",", "").strip()
    if cleaned.endswith(".0"):
        cleaned = cleaned[:-2]
    return int(cleaned)
