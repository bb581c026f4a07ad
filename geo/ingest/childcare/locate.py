"""Placing the staged centres: coordinates checked against the 시군구 named in the row, fallbacks to a point inside
the 법정동 (else the 시군구) named in the address, and 시군구/법정동/행정동 by point-in-polygon. All geometries are
EPSG:4326 points (lon, lat); distances are metric (geography or EPSG:5179)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, text

from geo.ingest.childcare.formats import CsvFormat, names_sido, sido_short_name

# Placeholder that OA-20300 (and the national export) put on centres whose location is unknown: Seoul City Hall.
CITY_HALL_PLACEHOLDER_LAT_LON = (37.566470, 126.977963)
# Published points farther than this from the 시군구 named in the row are wrong (another city, the sea);
# boundary vintages and simplification differ by far less.
MAX_OFFSET_FROM_DISTRICT_M = 1000.0
# Points in no 법정동/행정동 polygon (gaps between boundary vintages) take the nearest one within this distance.
DONG_SNAP_M = 100.0
# A point outside the 시군구 its row names (or on the edge it shares with another) is moved this far inside it, so
# that point-in-polygon gives the official 시군구 and exactly one 행정동 of it.
DISTRICT_INSET_M = 1.0

GEOCODE_SOURCE = "source"
# The published point, moved into the row's own 시군구 (see ``DISTRICT_INSET_M``).
GEOCODE_SOURCE_SNAPPED = "source_snapped"
GEOCODE_LEGAL_DONG = "legal_dong_centroid"
GEOCODE_DISTRICT = "district_centroid"


class IssueSink(Protocol):
    """Where row-level problems go (``rows._Issues``)."""

    def flag(self, row: int, code: str | None, column: str | None, reason: str) -> None: ...

    def skip(self, row: int, code: str | None, column: str | None, reason: str) -> None: ...


def legal_dong_names_in_address(address: str) -> list[str]:
    """Candidate 법정동 names in an address, most reliable first.

    Road addresses name the 법정동 first in parentheses (``"... 월드컵북로 416 2층(상암동, LGU+상암사옥)"`` ->
    ``상암동``); jibun addresses name it as a word (``"서울특별시 강남구 역삼동 123-4"``, ``종로1가``). Old
    addresses often name the 행정동 instead, so each word also yields its 법정동 spellings: ``신림8동``/
    ``독산제2동``/``면목3.8동``/``화곡본동`` -> ``신림동``/``독산동``/``면목동``/``화곡동``, ``성수2가1동`` ->
    ``성수동2가``; a detached ``N가`` is joined (``당산동 3가`` -> ``당산동3가``). Callers keep the first
    candidate that is a 법정동 of the centre's 시군구.
    """
    candidates: list[str] = []

    def add(word: str) -> None:
        word = word.strip(" ,.;:()[]")
        if not word:
            return
        variants = [word]
        if re.search(r"\D(?:제?[\d.·,]+|본)동$", word):
            variants += [re.sub(r"(?:[\d.·,]+|본)동$", "동", word), re.sub(r"(?:제[\d.·,]+|본)동$", "동", word)]
        match = re.fullmatch(r"(\D+?)동?(\d+가)[\d.·,]*동", word)
        if match:
            variants.append(f"{match.group(1)}동{match.group(2)}")
        for variant in variants:
            if variant not in candidates:
                candidates.append(variant)

    for inside in re.findall(r"\(([^)]*)\)", address or ""):
        first = re.split(r"[,，]", inside)[0].strip()
        add(re.sub(r"\s+(\d+가)$", r"\1", first))
    words = re.sub(r"\([^)]*\)", " ", address or "").split()
    for i, word in enumerate(words):
        if i + 1 < len(words) and re.fullmatch(r"\d+가", words[i + 1]):
            add(word + words[i + 1])
        # Jibun written without a space before the lot number: "망원동432-28".
        add(re.sub(r"(?<=[동가리])\d[\d-]*(번지)?$", "", word))
    return candidates



@dataclass
class _Lookups:
    """Boundary names loaded before parsing: 시군구 by (시도 short name, name) and 법정동 by (시군구, name)."""

    districts: dict[tuple[str, str], str]
    legal_dongs: dict[str, dict[str, str]]
    # (시도 short name, code) by 시군구 name: a per-row scan of every 시군구 made the cost per row grow with the
    # number of 시도 loaded (250 시군구 nationally against Seoul's 25).
    districts_by_name: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for (short, name), code in self.districts.items():
            self.districts_by_name.setdefault(name, []).append((short, code))

    @classmethod
    def load(cls, conn: Connection) -> _Lookups:
        districts: dict[tuple[str, str], str] = {}
        for code, name, sido in conn.execute(text("SELECT code, name, sido_name FROM districts")):
            districts[(sido_short_name(sido), re.sub(r"\s+", "", name))] = code
        legal: dict[str, dict[str, str]] = {}
        for code, district_code, name in conn.execute(text("SELECT code, district_code, name FROM legal_dongs")):
            legal.setdefault(district_code, {})[re.sub(r"\s+", "", name)] = code
        return cls(districts, legal)

    def district(self, sido: str, name: str) -> str | None:
        """시군구 code by name within the 시도 (a merged 시도 such as 전남광주통합특별시 matches both parts)."""
        name = re.sub(r"\s+", "", name or "")
        if not name:
            return None
        matches = {code for short, code in self.districts_by_name.get(name, ()) if names_sido(sido, short)}
        return matches.pop() if len(matches) == 1 else None

    def legal_dong(self, district_code: str | None, address: str) -> str | None:
        names = self.legal_dongs.get(district_code or "", {})
        for candidate in legal_dong_names_in_address(address) if names else []:
            if candidate in names:
                return names[candidate]
        return None



def _locate(conn: Connection, fmt: CsvFormat, *, lat_col: str, lon_col: str, issues: IssueSink,
            exact_max_m: float = 150.0) -> None:
    """Geometry, 시군구, 법정동 and 행정동 of every staged row (set-based); rows that cannot be placed are
    removed from staging and reported as skipped, rows placed by fallback are flagged.

    A row placed farther than ``exact_max_m`` metres from its published point, or inside its 법정동/시군구 for want
    of a usable one, gets ``location_approximate`` (its point only says which 구/동 it is in); ``location_offset_m``
    is the distance moved (NULL without a published point)."""
    conn.execute(text("""
        UPDATE _childcare_staging SET geom_4326 = ST_SetSRID(ST_MakePoint(lon, lat), 4326), geocode_quality = :source
        WHERE lon IS NOT NULL AND lat IS NOT NULL
    """), {"source": GEOCODE_SOURCE})
    # A published point far outside the 시군구 the row names is wrong: treat it like a missing one.
    conn.execute(text("""
        UPDATE _childcare_staging s SET offset_m = ST_Distance(s.geom_4326::geography, d.geom_4326::geography),
            geom_4326 = NULL, geocode_quality = NULL
        FROM districts d
        WHERE d.code = s.district_code AND s.geom_4326 IS NOT NULL AND NOT ST_Covers(d.geom_4326, s.geom_4326)
          AND NOT ST_DWithin(s.geom_4326::geography, d.geom_4326::geography, :max_offset_m)
    """), {"max_offset_m": MAX_OFFSET_FROM_DISTRICT_M})
    conn.execute(text("""
        UPDATE _childcare_staging s SET geom_4326 = ST_PointOnSurface(l.geom_4326), geocode_quality = :quality
        FROM legal_dongs l WHERE s.geom_4326 IS NULL AND l.code = s.legal_dong_code
    """), {"quality": GEOCODE_LEGAL_DONG})
    conn.execute(text("""
        UPDATE _childcare_staging s SET geom_4326 = ST_PointOnSurface(d.geom_4326), geocode_quality = :quality
        FROM districts d WHERE s.geom_4326 IS NULL AND d.code = s.district_code
    """), {"quality": GEOCODE_DISTRICT})
    # The row's 시군구 is official: a point outside it (geocoded a few metres across the line) or on the edge it
    # shares with another 구 is moved to the nearest point DISTRICT_INSET_M inside it (metric, EPSG:5179).
    # The points another 시군구 covers are found 시군구 by 시군구 (LATERAL over an index of the staged points), so
    # that PostGIS's prepared-geometry cache serves each polygon for every point in its box: tested point by point
    # against each neighbour's polygon, the cost per row grew with the size of rural 시군구 polygons (avg 2,000
    # vertices against Seoul's 250; 7x slower nationally).
    conn.execute(text("CREATE INDEX _childcare_staging_geom ON _childcare_staging USING gist (geom_4326)"))
    conn.execute(text("""
        WITH shared AS MATERIALIZED (
            SELECT x.row_number
            FROM (SELECT code, geom_4326 FROM districts ORDER BY code OFFSET 0) o
            CROSS JOIN LATERAL (
                SELECT t.row_number FROM _childcare_staging t
                WHERE t.geom_4326 && o.geom_4326 AND t.district_code <> o.code AND ST_Covers(o.geom_4326, t.geom_4326)
            ) x
        )
        UPDATE _childcare_staging s SET
            geom_4326 = (
                SELECT ST_Transform(ST_ClosestPoint(CASE WHEN ST_IsEmpty(x.inset) THEN x.gu ELSE x.inset END,
                                                    ST_Transform(s.geom_4326, 5179)), 4326)
                FROM (SELECT ST_Transform(d.geom_4326, 5179) AS gu,
                             ST_Buffer(ST_Transform(d.geom_4326, 5179), -:inset_m) AS inset) x),
            geocode_quality = CASE WHEN s.geocode_quality = :source THEN :snapped ELSE s.geocode_quality END
        FROM districts d
        WHERE d.code = s.district_code AND s.geom_4326 IS NOT NULL
          AND (NOT ST_Covers(d.geom_4326, s.geom_4326) OR s.row_number IN (SELECT row_number FROM shared))
    """), {"inset_m": DISTRICT_INSET_M, "source": GEOCODE_SOURCE, "snapped": GEOCODE_SOURCE_SNAPPED})
    # Point-in-polygon for what the address did not give; ties on shared edges broken by code for stability,
    # preferring polygons of the row's own 시군구.
    conn.execute(text("""
        UPDATE _childcare_staging s SET district_code = (
            SELECT d.code FROM districts d WHERE ST_Covers(d.geom_4326, s.geom_4326) ORDER BY d.code LIMIT 1)
        WHERE s.district_code IS NULL AND s.geom_4326 IS NOT NULL
    """))
    conn.execute(text("""
        UPDATE _childcare_staging s SET legal_dong_code = (
            SELECT l.code FROM legal_dongs l WHERE ST_Covers(l.geom_4326, s.geom_4326)
            ORDER BY (l.district_code IS NOT DISTINCT FROM s.district_code) DESC, l.code LIMIT 1)
        WHERE s.legal_dong_code IS NULL AND s.geom_4326 IS NOT NULL
    """))
    # The 행정동 must lie in the row's 시군구 (the lowest id on a shared edge). 행정동 by 행정동, as above.
    conn.execute(text("""
        UPDATE _childcare_staging s SET admin_dong_id = m.id
        FROM (
            SELECT DISTINCT ON (x.row_number) x.row_number, a.id
            FROM (SELECT id, district_code, geom_4326 FROM admin_dongs ORDER BY id OFFSET 0) a
            CROSS JOIN LATERAL (
                SELECT t.row_number FROM _childcare_staging t
                WHERE t.geom_4326 && a.geom_4326 AND (t.district_code IS NULL OR a.district_code = t.district_code)
                  AND ST_Covers(a.geom_4326, t.geom_4326)
            ) x
            ORDER BY x.row_number, a.id
        ) m
        WHERE m.row_number = s.row_number
    """))
    conn.execute(text("DROP INDEX _childcare_staging_geom"))
    # Points in slivers between dong polygons of different vintages: the nearest dong within DONG_SNAP_M (the bbox
    # prefilter uses 50 km per degree, wider than needed: a degree spans >= 88 km anywhere in Korea).
    conn.execute(text("""
        UPDATE _childcare_staging s SET legal_dong_code = (
            SELECT l.code FROM legal_dongs l
            WHERE l.geom_4326 && ST_Expand(s.geom_4326, :snap_deg)
              AND ST_DWithin(l.geom_4326::geography, s.geom_4326::geography, :snap_m)
            ORDER BY (l.district_code IS NOT DISTINCT FROM s.district_code) DESC, l.geom_4326 <-> s.geom_4326,
                     l.code
            LIMIT 1)
        WHERE s.legal_dong_code IS NULL AND s.geom_4326 IS NOT NULL
    """), {"snap_m": DONG_SNAP_M, "snap_deg": DONG_SNAP_M / 50_000})
    conn.execute(text("""
        UPDATE _childcare_staging s SET admin_dong_id = (
            SELECT a.id FROM admin_dongs a
            WHERE a.geom_4326 && ST_Expand(s.geom_4326, :snap_deg)
              AND ST_DWithin(a.geom_4326::geography, s.geom_4326::geography, :snap_m)
              AND (s.district_code IS NULL OR a.district_code = s.district_code)
            ORDER BY (a.district_code IS NOT DISTINCT FROM s.district_code) DESC, a.geom_4326 <-> s.geom_4326, a.id
            LIMIT 1)
        WHERE s.admin_dong_id IS NULL AND s.geom_4326 IS NOT NULL
    """), {"snap_m": DONG_SNAP_M, "snap_deg": DONG_SNAP_M / 50_000})

    coords = f"{lat_col},{lon_col}"
    rows = conn.execute(text("""
        SELECT s.row_number, s.code, s.geocode_reason, s.offset_m, s.geocode_quality, s.lat, s.lon,
               s.legal_dong_code, l.name AS legal_dong_name, s.district_code, d.name AS district_name,
               ST_Distance(ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography, s.geom_4326::geography)
                   AS moved_m,
               (SELECT string_agg(o.name, ', ' ORDER BY o.code) FROM districts o
                WHERE ST_Covers(o.geom_4326, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326))) AS published_in
        FROM _childcare_staging s
        LEFT JOIN legal_dongs l ON l.code = s.legal_dong_code
        LEFT JOIN districts d ON d.code = s.district_code
        WHERE s.geocode_quality IS DISTINCT FROM :source
        ORDER BY s.row_number
    """), {"source": GEOCODE_SOURCE}).all()
    unplaced: list[int] = []
    for r in rows:
        if r.geocode_quality == GEOCODE_SOURCE_SNAPPED:
            inside = [name for name in (r.published_in or "").split(", ") if name]
            others = ", ".join(name for name in inside if name != r.district_name) or "no 시군구"
            where = (f"on the edge between 시군구 {r.district_name} named in {fmt.district} and {others}"
                     if r.district_name in inside else
                     f"outside 시군구 {r.district_name} named in {fmt.district} (in {others})")
            issues.flag(r.row_number, r.code, coords, f"coordinates {r.lat},{r.lon} lie {where}; moved "
                        f"{r.moved_m:.1f} m to the nearest point inside {r.district_name}")
            continue
        why = r.geocode_reason or (
            f"coordinates {r.lat},{r.lon} lie {r.offset_m / 1000:.1f} km outside 시군구 {r.district_name}")
        if r.geocode_quality == GEOCODE_LEGAL_DONG:
            issues.flag(r.row_number, r.code, coords,
                        f"{why}; placed inside 법정동 {r.legal_dong_name} ({r.legal_dong_code}) named in {fmt.address}")
        elif r.geocode_quality == GEOCODE_DISTRICT:
            issues.flag(r.row_number, r.code, coords,
                        f"{why}; no 법정동 found in {fmt.address}; placed inside 시군구 {r.district_name} "
                        f"({r.district_code})")
        else:
            unplaced.append(r.row_number)
            issues.skip(r.row_number, r.code, coords,
                        f"{why}; and no loaded 법정동 or 시군구 boundary matches {fmt.address}/{fmt.district}")
    if unplaced:
        conn.execute(text("DELETE FROM _childcare_staging WHERE row_number = ANY(:rows)"), {"rows": unplaced})
    conn.execute(text("""
        UPDATE _childcare_staging s SET location_offset_m = m.offset_m,
            location_approximate = coalesce(s.geocode_quality IN (:legal_dong, :district)
                                            OR m.offset_m > :exact_max_m, false)
        FROM (SELECT row_number,
                     CASE WHEN lon IS NOT NULL AND lat IS NOT NULL THEN
                         ST_Distance(ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography, geom_4326::geography)
                     END AS offset_m
              FROM _childcare_staging) m
        WHERE m.row_number = s.row_number
    """), {"legal_dong": GEOCODE_LEGAL_DONG, "district": GEOCODE_DISTRICT, "exact_max_m": exact_max_m})
    for r in conn.execute(text("""
            SELECT row_number, code, location_offset_m FROM _childcare_staging
            WHERE location_approximate AND geocode_quality = :snapped ORDER BY row_number"""),
            {"snapped": GEOCODE_SOURCE_SNAPPED}):
        issues.flag(r.row_number, r.code, f"{lat_col},{lon_col}",
                    f"moved {r.location_offset_m:.0f} m, more than {exact_max_m:.0f} m: location approximate "
                    "(found by 구/동, shown as approximate)")

