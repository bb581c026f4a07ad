"""Importers: a published list of disclosed violations (위반 어린이집 공표 목록) and a list of evaluation grades
(평가제), from CSV (UTF-8 or cp949) or XLSX (the first sheet). The accepted columns are documented in
docs/disclosure.md.

Every row is checked before anything is written; a bad row stops the import with a message naming its row (the
line in the file, the header being row 1) and its column, and nothing is written (the caller's transaction rolls
back). A row that is already in the database (the same centre, kind and decision day; the same centre and
evaluation day) is counted as unchanged, so an import can be repeated.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.disclosure import records
from geo.disclosure.rules import SanctionKind, parse_kind, publication_period
from geo.errors import DolbomError, ImportFailed, InvalidQuery
from geo.ingest.csvio import detect_encoding

#: Columns of a disclosure list: (column, required). Aliases in ``DISCLOSURE_ALIASES``.
DISCLOSURE_COLUMNS: tuple[tuple[str, bool], ...] = (
    ("어린이집코드", True), ("어린이집명", True), ("주소", False), ("대표자명", False), ("원장명", False),
    ("위반행위", True), ("처분종류", True), ("처분내용", True), ("근거법령", True), ("처분일", True),
    ("확정일", True), ("공표시작일", False), ("공표종료일", False), ("처분기관", True), ("금액", False),
)
DISCLOSURE_ALIASES: dict[str, str] = {
    "시설코드": "어린이집코드", "시설명": "어린이집명", "소재지": "주소", "대표자": "대표자명", "원장": "원장명",
    "위반내용": "위반행위", "처분사항": "처분내용", "관련법령": "근거법령", "처분일자": "처분일",
    "처분확정일": "확정일", "공표기간시작": "공표시작일", "공표기간종료": "공표종료일", "처분청": "처분기관",
}
EVALUATION_COLUMNS: tuple[tuple[str, bool], ...] = (("어린이집코드", True), ("평가등급", True), ("평가일", True))
EVALUATION_ALIASES: dict[str, str] = {"code": "어린이집코드", "grade": "평가등급", "evaluated_on": "평가일",
                                      "시설코드": "어린이집코드", "등급": "평가등급", "평가일자": "평가일"}
GRADES = ("A", "B", "C", "D")
MAX_ROWS = 100_000
_DATE = re.compile(r"^(\d{4})[-./](\d{1,2})[-./](\d{1,2})\.?$|^(\d{4})(\d{2})(\d{2})$")


class RowError(InvalidQuery):
    """A row of an imported file is refused; ``row`` and ``column`` name where."""

    title = "Invalid row"


@dataclass
class ImportSummary:
    """What an import did."""

    rows: int = 0
    inserted: int = 0
    unchanged: int = 0
    details: list[str] = field(default_factory=list)


def read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Header and ``(row number, cells)`` of a CSV or XLSX file (row 1 is the header; blank rows skipped)."""
    if not path.is_file():
        raise ImportFailed(f"{path.name}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise ImportFailed(f"{path.name}: not an XLSX workbook ({exc})") from exc
        rows = [["" if v is None else (v.date().isoformat() if isinstance(v, datetime) else
                                       v.isoformat() if isinstance(v, date) else str(v)).strip() for v in r]
                for r in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    else:
        encoding = detect_encoding(path)
        try:
            with path.open(encoding=encoding, newline="") as fh:
                rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(fh.read()), strict=True)]
        except csv.Error as exc:
            raise ImportFailed(f"{path.name}: not a CSV file ({exc})") from exc
    if not rows:
        raise ImportFailed(f"{path.name}: empty file")
    header, body = rows[0], rows[1:]
    if len(body) > MAX_ROWS:
        raise ImportFailed(f"{path.name}: more than {MAX_ROWS:,} rows")
    return header, ((n, r) for n, r in enumerate(body, start=2) if any(c for c in r))


def _columns(path: Path, header: list[str], spec: tuple[tuple[str, bool], ...],
             aliases: dict[str, str]) -> dict[str, int]:
    names = [aliases.get(h.strip(), h.strip()) for h in header]
    index = {name: i for i, name in enumerate(names) if name}
    missing = [c for c, required in spec if required and c not in index]
    if missing:
        raise ImportFailed(f"{path.name}: missing required column(s) {', '.join(missing)}", missing_columns=missing)
    return index


def parse_day(value: str) -> date:
    """``2026-03-02``, ``2026.3.2``, ``2026/03/02`` or ``20260302``; ValueError otherwise."""
    m = _DATE.match(value.strip())
    if m is None:
        raise ValueError(value)
    y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
    return date(int(y), int(mo), int(d))


class _Row:
    """Cells of one row by column name, with errors naming row and column."""

    def __init__(self, path: Path, number: int, cells: list[str], index: dict[str, int]) -> None:
        self.path, self.number, self.cells, self.index = path, number, cells, index

    def fail(self, column: str, why: str) -> RowError:
        return RowError(f"{self.path.name}: row {self.number}, column {column}: {why}", row=self.number,
                        column=column, param=column)

    def get(self, column: str, *, required: bool = False) -> str:
        i = self.index.get(column)
        value = self.cells[i].strip() if i is not None and i < len(self.cells) else ""
        if required and not value:
            raise self.fail(column, "empty")
        return value

    def day(self, column: str, *, required: bool = False) -> date | None:
        raw = self.get(column, required=required)
        if not raw:
            return None
        try:
            return parse_day(raw)
        except ValueError:
            raise self.fail(column, f"not a date (YYYY-MM-DD): {raw!r}") from None

    def check(self, column: str, parse: Callable[[str], Any], *, required: bool = False) -> Any:
        raw = self.get(column, required=required)
        if not raw:
            return None
        try:
            return parse(raw)
        except DolbomError as exc:
            raise self.fail(column, exc.detail) from None
        except ValueError:
            raise self.fail(column, f"not valid: {raw!r}") from None


def _codes(conn: Connection) -> dict[str, str]:
    return {r.code: r.name for r in conn.execute(text("SELECT code, name FROM facilities"))}


def import_disclosures(conn: Connection, path: Path, *, now: datetime, actor_user_id: int | None = None,
                       ) -> ImportSummary:
    """Import a published list of disclosed violations: each row becomes a sanction and its disclosure (period
    from the list, checked against the rule). All rows are checked first; a bad row raises ``RowError`` and
    nothing is written. Runs in ``conn``'s transaction (the caller commits)."""
    header, body = read_table(path)
    index = _columns(path, header, DISCLOSURE_COLUMNS, DISCLOSURE_ALIASES)
    known = _codes(conn)
    parsed: list[dict[str, Any]] = []
    for number, cells in body:
        row = _Row(path, number, cells, index)
        code = row.get("어린이집코드", required=True)
        if code not in known:
            raise row.fail("어린이집코드", f"no centre {code!r} in the database")
        for column in ("어린이집명", "위반행위", "처분내용", "근거법령", "처분기관"):
            value = row.get(column, required=True)
            if len(value) > records.MAX_TEXT:
                raise row.fail(column, f"longer than {records.MAX_TEXT} characters")
        kind: SanctionKind = row.check("처분종류", lambda v: parse_kind(v, param="처분종류"), required=True)
        decided = row.day("처분일", required=True)
        final = row.day("확정일", required=True)
        assert decided is not None and final is not None
        if final < decided:
            raise row.fail("확정일", "before 처분일")
        start = row.day("공표시작일") or final
        if start < final:
            raise row.fail("공표시작일", "before 확정일 (a sanction is published only once final)")
        until = row.day("공표종료일")
        rule_until = publication_period(final_at=final, start=start).published_until
        if until is not None and not start <= until <= rule_until:
            raise row.fail("공표종료일", f"must lie between 공표시작일 {start.isoformat()} and "
                                        f"{rule_until.isoformat()} (the rule's period)")
        amount = row.check("금액", lambda v: int(v.replace(",", "").replace("원", "")))
        if amount is not None and amount < 0:
            raise row.fail("금액", "negative")
        parsed.append({"row": row, "code": code, "kind": kind, "decided": decided, "final": final, "start": start,
                       "until": until, "amount": amount})
    summary = ImportSummary()
    with conn.begin_nested():  # all rows or none, whatever the caller does with its transaction
        _write_disclosures(conn, parsed, summary, source=f"import:{path.name}", now=now, actor_user_id=actor_user_id)
    return summary


def _write_disclosures(conn: Connection, parsed: list[dict[str, Any]], summary: ImportSummary, *, source: str,
                       now: datetime, actor_user_id: int | None) -> None:
    for p in parsed:
        row = p["row"]
        summary.rows += 1
        exists = conn.execute(text("""
            SELECT 1 FROM sanctions s JOIN facilities f ON f.id = s.facility_id
            WHERE f.code = :c AND s.kind = :k AND s.decided_at = :d"""),
                              {"c": p["code"], "k": p["kind"].value, "d": p["decided"]}).first()
        if exists is not None:
            summary.unchanged += 1
            continue
        try:
            sanction = records.record_sanction(
                conn, facility_code=p["code"], kind=p["kind"], legal_basis=row.get("근거법령"),
                violation=row.get("위반행위"), disposition=row.get("처분내용"), decided_at=p["decided"],
                final_at=p["final"], authority=row.get("처분기관"), representative_name=row.get("대표자명"),
                director_name=row.get("원장명"), amount_won=p["amount"], source=source, actor_user_id=actor_user_id)
            records.publish(conn, sanction["id"], now=now, published_from=p["start"], published_until=p["until"],
                            actor_user_id=actor_user_id)
        except InvalidQuery as exc:
            column = {"published_until": "공표종료일", "published_from": "공표시작일"}.get(
                str(exc.extra.get("param")), str(exc.extra.get("param") or "어린이집코드"))
            raise row.fail(column, exc.detail) from None
        summary.inserted += 1
    records.refresh_shown(conn, now=now)


def _grade(value: str) -> str:
    grade = value.strip().upper()
    if grade not in GRADES:
        raise InvalidQuery(f"grade must be one of {', '.join(GRADES)}; not {value!r}", param="grade")
    return grade


def import_evaluations(conn: Connection, path: Path, *, actor_user_id: int | None = None) -> ImportSummary:
    """Import 평가제 grades (centre code, grade A-D, date): the history grows, and each centre's latest grade
    becomes ``facilities.evaluation_grade``/``evaluation_date``. All rows checked first; nothing written on a bad
    row (``RowError``)."""
    header, body = read_table(path)
    index = _columns(path, header, EVALUATION_COLUMNS, EVALUATION_ALIASES)
    known = _codes(conn)
    parsed: list[tuple[str, str, date]] = []
    for number, cells in body:
        row = _Row(path, number, cells, index)
        code = row.get("어린이집코드", required=True)
        if code not in known:
            raise row.fail("어린이집코드", f"no centre {code!r} in the database")
        grade = row.check("평가등급", _grade, required=True)
        day = row.day("평가일", required=True)
        assert day is not None
        parsed.append((code, grade, day))
    summary = ImportSummary(rows=len(parsed))
    with conn.begin_nested():
        _write_evaluations(conn, parsed, summary, path=path, actor_user_id=actor_user_id)
    return summary


def _write_evaluations(conn: Connection, parsed: list[tuple[str, str, date]], summary: ImportSummary, *,
                       path: Path, actor_user_id: int | None) -> None:
    touched: set[str] = set()
    for code, grade, day in parsed:
        inserted = conn.execute(text("""
            INSERT INTO evaluations (facility_id, grade, evaluated_on, source)
            SELECT id, :g, :d, :s FROM facilities WHERE code = :c
            ON CONFLICT (facility_id, evaluated_on) DO UPDATE SET grade = EXCLUDED.grade, source = EXCLUDED.source
              WHERE evaluations.grade IS DISTINCT FROM EXCLUDED.grade
            RETURNING id"""), {"g": grade, "d": day, "s": f"import:{path.name}", "c": code}).first()
        if inserted is None:
            summary.unchanged += 1
        else:
            summary.inserted += 1
            touched.add(code)
    if touched:
        changed = refresh_latest(conn, codes=sorted(touched))
        audit(conn, actor_user_id=actor_user_id, action="evaluation.import", entity="evaluations", entity_id=None,
              before=None, after={"file": path.name, "rows": summary.rows, "written": summary.inserted,
                                  "centres_changed": changed})


def refresh_latest(conn: Connection, *, codes: list[str] | None = None) -> int:
    """Copy each centre's latest grade into ``facilities`` (only rows that change: the layer versions move for
    those alone); the number of centres changed."""
    return int(conn.execute(text("""
        WITH latest AS (
            SELECT DISTINCT ON (e.facility_id) e.facility_id, e.grade, e.evaluated_on
            FROM evaluations e JOIN facilities f ON f.id = e.facility_id
            WHERE CAST(:codes AS text[]) IS NULL OR f.code = ANY(:codes)
            ORDER BY e.facility_id, e.evaluated_on DESC
        )
        UPDATE facilities f SET evaluation_grade = l.grade, evaluation_date = l.evaluated_on, updated_at = now()
        FROM latest l WHERE l.facility_id = f.id
          AND (f.evaluation_grade, f.evaluation_date) IS DISTINCT FROM (l.grade, l.evaluated_on)"""),
                            {"codes": codes}).rowcount)


def evaluation_history(conn: Connection, *, facility_code: str) -> list[dict[str, Any]]:
    """A centre's grades, newest first."""
    rows = conn.execute(text("""
        SELECT e.grade, e.evaluated_on, e.source FROM evaluations e JOIN facilities f ON f.id = e.facility_id
        WHERE f.code = :c ORDER BY e.evaluated_on DESC"""), {"c": facility_code})
    return [dict(r._mapping) for r in rows]
