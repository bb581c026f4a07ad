"""Reading official CSV exports: encoding detection (UTF-8 with/without BOM, else cp949) and streaming rows."""

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
        reader = csv.reader(fh)
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


def iter_rows(header: list[str], reader: Iterable[list[str]]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row_number, row)`` with stripped values, blank lines skipped; row numbers count the header as row 1,
    as a spreadsheet does."""
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        yield number, {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}


def parse_int(value: str) -> int:
    """An integer from a Korean export cell ('1,234', ' 12 ', '12.0'); raises ValueError when not a number."""
    cleaned = value.replace(",", "").strip()
    if cleaned.endswith(".0"):
        cleaned = cleaned[:-2]
    return int(cleaned)
