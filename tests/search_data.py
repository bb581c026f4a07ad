"""A small hand-written search fixture shared by the geo and API search tests.

Two fictional districts on Ulleungdo (far from every real data set the tests load): 가상구 (99901), a square
split into 가상1동 (east) and 가상2동 (west), and 모의구 (99902) with another 가상1동 so that the name is
ambiguous. Eight centres (names prefixed 가상 so that no real centre shares them) are placed at exact geodesic
distances and bearings from ``CENTRE`` with ``pyproj.Geod.fwd``; the expected memberships in the tests follow
from the table below, not from the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyproj import Geod
from shapely import box
from sqlalchemy import Connection, text

GEOD = Geod(ellps="WGS84")
CENTRE = (130.90, 37.50)  # lon, lat (EPSG:4326)
LAT, LON = CENTRE[1], CENTRE[0]

DISTRICT_CODE = "99901"
DISTRICT_NAME = "가상구"
OTHER_DISTRICT_CODE = "99902"
OTHER_DISTRICT_NAME = "모의구"
EAST_DONG = {"name": "가상1동", "kostat_code": "9990101", "mois_code": "9990151000"}
WEST_DONG = {"name": "가상2동", "kostat_code": "9990102", "mois_code": "9990152000"}
OTHER_DONG = {"name": "가상1동", "kostat_code": "9990201", "mois_code": "9990251000"}
DISTRICT_BOX = box(130.87, 37.47, 130.93, 37.53)  # ~5.3 km x 6.7 km
EAST_BOX = box(130.90, 37.47, 130.93, 37.53)
WEST_BOX = box(130.87, 37.47, 130.90, 37.53)
OTHER_BOX = box(130.80, 37.45, 130.83, 37.48)


def _free(**by_age: int) -> dict[str, int]:
    free = {str(age): 0 for age in range(6)}
    free.update({key.removeprefix("a"): value for key, value in by_age.items()})
    free["total"] = max(free.values())
    return free


@dataclass(frozen=True)
class Centre:
    """One fixture centre; ``distance_m``/``bearing`` from ``CENTRE``."""

    key: str
    name: str
    facility_type: str
    status: str
    services: tuple[str, ...]
    free_by_age: dict[str, int] | None
    has_bus: bool | None
    cctv_count: int | None
    distance_m: float
    bearing: float

    @property
    def lonlat(self) -> tuple[float, float]:
        lon, lat, _ = GEOD.fwd(LON, LAT, self.bearing, self.distance_m)
        return float(lon), float(lat)


CENTRES: tuple[Centre, ...] = (
    Centre("A", "가상해님어린이집", "national_public", "active", ("disability_integrated", "extended_hours"),
           _free(a1=2), True, 5, 100.0, 10.0),
    Centre("B", "가상달님어린이집", "home", "active", ("general",), _free(a0=1, a2=3), False, 0, 300.0, 90.0),
    Centre("C", "가상별님어린이집", "private", "reopened", ("twenty_four_hour", "extended_hours", "holiday"), _free(a2=5, a3=1),
           None, 2, 600.0, 190.0),
    Centre("D", "가상꽃님어린이집", "workplace", "suspended", ("holiday",), _free(a4=3), True, 3, 800.0, 270.0),
    Centre("E", "가상바다어린이집", "national_public", "closed", ("multicultural",), None, None, None, 900.0, 45.0),
    Centre("F", "가상하늘어린이집", "corporate_group", "active", ("hourly", "infant_only"), None, False, 1,
           1500.0, 90.0),
    Centre("G", "가상100%_협동어린이집", "cooperative", "active", ("disability_specialised",), _free(a5=4), True, 8,
           2500.0, 270.0),
    Centre("H", "가상산들어린이집", "social_welfare", "active", ("extended_hours", "multicultural"), _free(a3=2), True,
           4, 5000.0, 0.0),
)
BY_KEY: dict[str, Centre] = {c.key: c for c in CENTRES}


def insert_search_fixture(conn: Connection) -> dict[str, int]:
    """Insert the districts, dongs and centres (inside the caller's transaction); returns key -> facility id."""
    for code, name, geom in ((DISTRICT_CODE, DISTRICT_NAME, DISTRICT_BOX),
                             (OTHER_DISTRICT_CODE, OTHER_DISTRICT_NAME, OTHER_BOX)):
        conn.execute(text("""
            INSERT INTO districts (code, name, sido_name, source, geom_4326)
            VALUES (:code, :name, '가상특별자치도', 'test', ST_Multi(ST_GeomFromText(:wkt, 4326)))"""),
            {"code": code, "name": name, "wkt": geom.wkt})
    for dong, district_code, geom in ((EAST_DONG, DISTRICT_CODE, EAST_BOX), (WEST_DONG, DISTRICT_CODE, WEST_BOX),
                                      (OTHER_DONG, OTHER_DISTRICT_CODE, OTHER_BOX)):
        conn.execute(text("""
            INSERT INTO admin_dongs (mois_code, kostat_code, district_code, name, geom_4326)
            VALUES (:mois_code, :kostat_code, :district_code, :name, ST_Multi(ST_GeomFromText(:wkt, 4326)))"""),
            {**dong, "district_code": district_code, "wkt": geom.wkt})
    conn.execute(text("""
        INSERT INTO legal_dongs (code, district_code, name, geom_4326)
        VALUES ('9990110100', :district_code, '가상리', ST_Multi(ST_GeomFromText(:wkt, 4326)))"""),
        {"district_code": DISTRICT_CODE, "wkt": DISTRICT_BOX.wkt})
    ids: dict[str, int] = {}
    for centre in CENTRES:
        lon, lat = centre.lonlat
        params: dict[str, Any] = {
            "code": f"TEST-{centre.key}", "name": centre.name, "facility_type": centre.facility_type,
            "status": centre.status, "services": list(centre.services),
            "free_by_age": json.dumps(centre.free_by_age) if centre.free_by_age is not None else None,
            "has_bus": centre.has_bus, "cctv_count": centre.cctv_count, "lon": lon, "lat": lat,
            "address": f"가상특별자치도 {DISTRICT_NAME} 가상로 {ord(centre.key)}",
        }
        ids[centre.key] = conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, sigungu_name, district_code, address,
                capacity, enrolled, free_by_age, services, has_bus, cctv_count, geocode_quality, source, geom_4326)
            VALUES (:code, :name, :facility_type, :status, '가상구', '99901', :address, 20, 10,
                CAST(:free_by_age AS jsonb), :services, :has_bus, :cctv_count, 'source', 'test',
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
            RETURNING id"""), params).scalar_one()
    return ids


def keys_of(ids: dict[str, int], facility_ids: list[int]) -> list[str]:
    """Fixture keys of result ids, in order (ids that are not fixture centres are kept as ``?<id>``)."""
    by_id = {v: k for k, v in ids.items()}
    return [by_id.get(i, f"?{i}") for i in facility_ids]


OPERATING = {"active", "reopened"}


def expected_keys(radius_m: float, keep: Callable[[Centre], bool] = lambda c: c.status in OPERATING) -> list[str]:
    """Fixture centres within ``radius_m`` of ``CENTRE`` that pass ``keep``, nearest first (from the table above,
    not from SQL)."""
    return [c.key for c in sorted(CENTRES, key=lambda c: c.distance_m) if c.distance_m <= radius_m and keep(c)]
