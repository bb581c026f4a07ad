"""Reading official CSV exports: encoding detection (UTF-8 with/without BOM, else cp949) and streaming rows."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

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


def read_rows(path: Path, *, required: tuple[str, ...] = ()) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Header and a stream of ``(row_number, row)``; row numbers count the header as row 1, as a spreadsheet does.

    Raises ``ImportFailed`` naming the missing columns when ``required`` are not all in the header.
    """
    encoding = detect_encoding(path)
    fh = path.open(encoding=encoding, newline="")
    reader = csv.reader(fh)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        fh.close()
        raise ImportFailed(f"{path.name}: empty file") from None
    missing = [c for c in required if c not in header]
    if missing:
        fh.close()
        raise ImportFailed(f"{path.name}: missing required column(s) {', '.join(missing)}", missing_columns=missing)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with fh:
            for number, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue
                yield number, {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}

    return header, rows()


def parse_int(value: str) -> int:
    """An integer from a Korean export cell ('1,234', ' 12 ', '12.0'); raises ValueError when not a number."""
    cleaned = value.replace(",", "").strip()
    if cleaned.endswith(".0"):
        cleaned = cleaned[:-2]
    return int(cleaned)
