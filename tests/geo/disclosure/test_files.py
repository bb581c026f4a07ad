"""Importing a published list of disclosed violations and a list of evaluation grades, in the documented format
(docs/disclosure.md), as CSV (UTF-8 and cp949) and XLSX built here: a good file adds sanctions and disclosures with
their periods (repeatable); a bad row stops the import with its row and column named and nothing written; grades
become the centre's latest, searchable and on the facilities layer."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Connection, select, text

from geo.disclosure import records
from geo.disclosure.files import RowError, import_disclosures, import_evaluations
from geo.errors import ImportFailed
from geo.layers.registry import get_layer
from geo.search.filters import FacilityFilters
from tests.search_data import insert_search_fixture

NOW = datetime(2026, 6, 1, 3, tzinfo=UTC)
HEADER = ["어린이집코드", "어린이집명", "주소", "대표자명", "원장명", "위반행위", "처분종류", "처분내용", "근거법령",
          "처분일", "확정일", "공표시작일", "공표종료일", "처분기관", "금액"]


def rows(codes: list[str]) -> list[list[str]]:
    return [
        [codes[0], "가상어린이집", "가상로 1", "홍길동", "김원장", "보육교사 허위 등록", "운영정지", "운영정지 3개월",
         "영유아보육법 제45조", "2026.02.01", "2026-03-02", "", "", "가상구청", "12,000,000"],
        [codes[1], "나라어린이집", "가상로 2", "이대표", "이원장", "아동 허위 등록 보조금 부정수급", "보조금 반환",
         "보조금 반환명령 5,400,000원", "영유아보육법 제40조", "2025-11-03", "2025-12-01", "2025-12-15",
         "2026-12-14", "가상구청", "5400000"],
    ]


def write_csv(path: Path, table: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(table)
    return path


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture()
def codes(connection: Connection) -> list[str]:
    ids = insert_search_fixture(connection)
    return [connection.execute(text("SELECT code FROM facilities WHERE id = :i"), {"i": ids[k]}).scalar_one()
            for k in ("A", "B", "C")]


def test_a_good_list_adds_sanctions_and_disclosures(connection: Connection, codes: list[str],
                                                    tmp_path: Path) -> None:
    path = write_csv(tmp_path / "위반시설_공표.csv", [HEADER, *rows(codes)], encoding="cp949")
    summary = import_disclosures(connection, path, now=NOW)
    assert (summary.rows, summary.inserted, summary.unchanged) == (2, 2, 0)
    first = records.active_disclosures(connection, now=NOW, facility_code=codes[0])[0]
    assert first["published_from"] == date(2026, 3, 2) and first["published_until"] == date(2029, 3, 1)
    assert first["kind"] == "suspension" and first["amount_won"] == 12_000_000
    second = records.active_disclosures(connection, now=NOW, facility_code=codes[1])[0]
    assert (second["published_from"], second["published_until"]) == (date(2025, 12, 15), date(2026, 12, 14))
    # Both published on 1 June 2026: both on the layer.
    source = get_layer("disclosures").source()
    assert sorted(connection.execute(select(source.c.code)).scalars()) == sorted(codes[:2])
    # Again: nothing new.
    again = import_disclosures(connection, path, now=NOW)
    assert (again.inserted, again.unchanged) == (0, 2) and count(connection, "disclosures") == 2


def test_the_same_list_as_xlsx(connection: Connection, codes: list[str], tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for r in rows(codes):
        sheet.append([date(2026, 2, 1) if v == "2026.02.01" else v for v in r])  # a real date cell too
    book.save(tmp_path / "list.xlsx")
    assert import_disclosures(connection, tmp_path / "list.xlsx", now=NOW).inserted == 2


@pytest.mark.parametrize(("row", "column", "value", "message"), [
    (3, "처분일", "2026-13-40", "not a date"),
    (3, "어린이집코드", "NOPE-1", "no centre"),
    (2, "처분종류", "벌금", "kind must be one of"),
    (3, "확정일", "2025-01-01", "before 처분일"),
    (3, "공표종료일", "2031-01-01", "must lie between"),
    (2, "위반행위", "", "empty"),
])
def test_a_bad_row_is_named_and_nothing_is_written(connection: Connection, codes: list[str], tmp_path: Path,
                                                    row: int, column: str, value: str, message: str) -> None:
    table = [HEADER, *rows(codes)]
    table[row - 1][HEADER.index(column)] = value
    path = write_csv(tmp_path / "bad.csv", table)
    before = (count(connection, "sanctions"), count(connection, "disclosures"), count(connection, "audit_log"))
    with pytest.raises(RowError) as caught:
        import_disclosures(connection, path, now=NOW)
    assert f"row {row}, column {column}" in caught.value.detail and message in caught.value.detail
    assert caught.value.extra["row"] == row and caught.value.extra["column"] == column
    assert (count(connection, "sanctions"), count(connection, "disclosures"), count(connection, "audit_log")) == before


def test_a_file_without_the_columns_is_refused(connection: Connection, codes: list[str], tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", [["이름", "주소"], ["x", "y"]])
    with pytest.raises(ImportFailed, match="missing required column"):
        import_disclosures(connection, path, now=NOW)


def test_grades_become_the_latest_and_searchable(connection: Connection, codes: list[str], tmp_path: Path) -> None:
    path = write_csv(tmp_path / "평가.csv", [["어린이집코드", "평가등급", "평가일"], [codes[0], "B", "2023-05-01"],
                                              [codes[0], "a", "2025.06.30"], [codes[1], "C", "20240102"]])
    before = connection.execute(text("SELECT count(*) FROM layer_changes WHERE layer = 'facilities'")).scalar_one()
    summary = import_evaluations(connection, path)
    assert (summary.rows, summary.inserted) == (3, 3)
    latest = dict(connection.execute(text("SELECT code, evaluation_grade FROM facilities WHERE code = ANY(:c)"),
                                     {"c": codes}).all())
    assert latest == {codes[0]: "A", codes[1]: "C", codes[2]: None}
    after = connection.execute(text("SELECT count(*) FROM layer_changes WHERE layer = 'facilities'")).scalar_one()
    assert after > before  # the facilities layer's tiles change with the grade
    where, params = FacilityFilters.parse(evaluation_grades="A,c", status="all").where()
    found = connection.exec_driver_sql(
        "SELECT code FROM facilities f WHERE " + where.as_string(None), params).scalars().all()  # type: ignore[arg-type]
    assert sorted(found) == sorted(codes[:2])
    assert import_evaluations(connection, path).unchanged == 3

    bad = write_csv(tmp_path / "bad.csv", [["code", "grade", "evaluated_on"], [codes[2], "B", "2025-01-01"],
                                           [codes[2], "E", "2025-01-01"]])
    with pytest.raises(RowError, match="row 3, column 평가등급"):
        import_evaluations(connection, bad)
    assert connection.execute(text("SELECT evaluation_grade FROM facilities WHERE code = :c"),
                              {"c": codes[2]}).scalar_one() is None
