"""MOIS population exports onto 행정동, checked against sums computed independently from the CSV."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from geo.errors import ImportFailed
from geo.ingest.boundaries import load_boundaries
from geo.ingest.population import import_mois_population


@pytest.fixture(scope="module")
def population_engine(make_database) -> Engine:
    engine = make_database("population")
    load_boundaries(engine, sido_code="11")
    return engine


def _csv_age_table(path: Path) -> dict[str, int]:
    """Seoul dong code -> 0-5 population, read with the csv module only."""
    out = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            code = re.search(r"\((\d{10})\)", row[0]).group(1)
            if code.startswith("11") and code[5:8] != "000":
                out[code] = int(row[2].replace(",", ""))
    return out


def test_age_table_import(population_engine: Engine, shared_data: Path) -> None:
    path = shared_data / "population" / "mois_jumin_pop_age0to5_by_area_202606.csv"
    expected = _csv_age_table(path)
    result = import_mois_population(population_engine, path)
    with population_engine.connect() as conn:
        rows = conn.execute(text("SELECT mois_code, population_0_5, population_by_age, population_source "
                                 "FROM admin_dongs WHERE population_source LIKE 'mois:%'")).all()
    assert result.updated == len(rows)
    for row in rows:
        assert row.population_0_5 == expected[row.mois_code]
        assert sum(row.population_by_age.values()) == row.population_0_5
    skipped_codes = {entry["code"] for entry in result.report}
    # Every Seoul dong row is either matched to a boundary or reported, with its row number.
    assert {r.mois_code for r in rows} | skipped_codes == set(expected)
    assert all(entry["row"] > 1 and entry["column"] == "행정구역" for entry in result.report)
    # Seoul total 248,533; only dongs created after the 2020 boundaries are left out.
    assert sum(expected[c] for c in skipped_codes) < 0.03 * sum(expected.values())


def test_single_age_import_and_reimport(population_engine: Engine, shared_data: Path) -> None:
    path = shared_data / "population" / "mois_jumin_pop_by_admdong_single_age_sex_20250131.csv"
    expected: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            code = row["행정기관코드"]
            if code.startswith("11") and code[5:8] != "000":
                expected[code] = {str(a): int(row[f"{a}세남자"]) + int(row[f"{a}세여자"]) for a in range(6)}
    first = import_mois_population(population_engine, path)
    second = import_mois_population(population_engine, path)
    assert first.updated == second.updated > 400
    with population_engine.connect() as conn:
        rows = conn.execute(text("SELECT mois_code, population_by_age FROM admin_dongs "
                                 "WHERE population_source = :src"), {"src": f"mois:{path.name}"}).all()
    assert len(rows) == first.updated
    for row in rows:
        assert row.population_by_age == expected[row.mois_code]


def test_bad_file_writes_nothing(population_engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('행정구역,2026년06월_계_총인구수\n"서울특별시 종로구 사직동(1111053000)","1"\n', encoding="utf-8")
    with population_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM import_runs")).scalar_one()
    with pytest.raises(ImportFailed, match="0세"):
        import_mois_population(population_engine, bad)
    with population_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM import_runs")).scalar_one() == before


def test_unparseable_number_names_row_and_column(population_engine: Engine, tmp_path: Path) -> None:
    header = ["행정구역", "2026년06월_계_총인구수", "2026년06월_계_연령구간인구수"] + [
        f"2026년06월_계_{a}세" for a in range(6)]
    path = tmp_path / "pop.csv"
    with path.open("w", encoding="cp949", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerow(["서울특별시 종로구 사직동(1111053000)", "8,874", "190", "17", "x", "24", "40", "40", "35"])
    result = import_mois_population(population_engine, path)
    assert result.skipped == 1 and result.updated == 0
    assert result.report[0]["row"] == 2 and "not a number" in result.report[0]["reason"]
    assert result.report[0]["column"] == "2026년06월_계_1세"
