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


def _targets(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Row code -> code of the polygon it was counted in, for rows of dongs split or renamed since the boundaries."""
    out = {}
    for entry in result.report:
        match = re.search(r"counted in the polygon of .* \((\d{10})\) that covers it", entry["reason"])
        if entry["action"] == "flagged" and match:
            out[entry["code"]] = match.group(1)
    return out


def test_age_table_import(population_engine: Engine, shared_data: Path) -> None:
    path = shared_data / "population" / "mois_jumin_pop_age0to5_by_area_202606.csv"
    expected = _csv_age_table(path)
    result = import_mois_population(population_engine, path)
    with population_engine.connect() as conn:
        rows = conn.execute(text("SELECT mois_code, population_0_5, population_by_age, population_source "
                                 "FROM admin_dongs WHERE population_source LIKE 'mois:%'")).all()
    assert result.updated == len(rows)
    targets = _targets(result)
    # The five Seoul rows of dongs split or renamed after the 2020 boundaries (3,800 children) land in the polygon
    # covering them: 신설동 and 용두동 in 용신동, 개포3동 in 일원2동 (renamed), 상일제1동/상일제2동 in 상일동.
    assert targets == {"1123051500": "1123053600", "1123053300": "1123053600", "1168067500": "1168074000",
                       "1174052500": "1174052000", "1174052600": "1174052000"}
    assert sum(expected[c] for c in targets) == 3800
    per_polygon: dict[str, int] = {}
    for code, n in expected.items():
        per_polygon[targets.get(code, code)] = per_polygon.get(targets.get(code, code), 0) + n
    for row in rows:
        assert row.population_0_5 == per_polygon[row.mois_code]
        assert sum(row.population_by_age.values()) == row.population_0_5
    # Every Seoul dong row is counted in a boundary; nothing skipped.
    assert {r.mois_code for r in rows} == set(per_polygon)
    assert not [e for e in result.report if e["action"] == "skipped"]
    assert all(entry["row"] > 1 and entry["column"] == "행정구역" for entry in result.report)


def _district_rows(path: Path) -> dict[str, int]:
    """구 code -> 0-5 population as the file states it: its 구 row (age table) or the sum of its dong rows."""
    out: dict[str, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        if "age0to5" in path.name:
            for row in csv.reader(fh):
                match = re.search(r"\((11\d{3})00000\)", row[0])
                if match and match.group(1) != "11000":
                    out[match.group(1)] = int(row[2].replace(",", ""))
        else:
            for row in csv.DictReader(fh):
                code = row["행정기관코드"]
                if code.startswith("11") and code[5:8] != "000":
                    out[code[:5]] = out.get(code[:5], 0) + sum(
                        int(row[f"{a}세{sex}"]) for a in range(6) for sex in ("남자", "여자"))
    return out


@pytest.mark.parametrize("name", ["mois_jumin_pop_age0to5_by_area_202606.csv",
                                  "mois_jumin_pop_by_admdong_single_age_sex_20250131.csv"])
def test_district_totals_equal_the_file(make_database, shared_data: Path, name: str) -> None:
    """구 totals of 0-5 population equal the file's (강동구 was 3,800 children short: 75.5 places per 100 children
    where the file gives 70.0)."""
    engine = make_database("population_" + ("age_table" if "age0to5" in name else "single_age"))
    load_boundaries(engine, sido_code="11")
    path = shared_data / "population" / name
    import_mois_population(engine, path)
    with engine.connect() as conn:
        totals = dict(conn.execute(text("SELECT district_code, sum(population_0_5) FROM admin_dongs "
                                        "WHERE district_code LIKE '11%' GROUP BY 1")).all())
        unset = conn.execute(text("SELECT count(*) FROM admin_dongs WHERE district_code LIKE '11%' "
                                  "AND population_source NOT LIKE 'mois:%'")).scalar_one()
    assert totals == _district_rows(path)
    assert unset == 0


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
    per_polygon: dict[str, dict[str, int]] = {}
    for code, ages in expected.items():
        into = per_polygon.setdefault(_targets(first).get(code, code), dict.fromkeys(ages, 0))
        for age, n in ages.items():
            into[age] += n
    with population_engine.connect() as conn:
        rows = conn.execute(text("SELECT mois_code, population_by_age FROM admin_dongs "
                                 "WHERE population_source = :src"), {"src": f"mois:{path.name}"}).all()
    assert len(rows) == first.updated
    for row in rows:
        assert row.population_by_age == per_polygon[row.mois_code]


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
