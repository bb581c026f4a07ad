"""Childcare supply against demand per 구 or 행정동: places, enrolment, free places and 0-5 population.

Only operating centres (정상/재개) count. ``places_per_100_children`` = 정원 / 0-5 population × 100: the
planner's first indicator of a blind spot (Seoul's 구 range roughly from 30 to 90).
"""

from __future__ import annotations

import geopandas as gpd
from sqlalchemy import Connection, text

from geo.domain import OPERATING_STATUSES

_BY_DISTRICT = """
    SELECT d.code, d.name,
           (SELECT sum(a.population_0_5) FROM admin_dongs a WHERE a.district_code = d.code) AS population_0_5,
           count(f.id) AS centres,
           coalesce(sum(f.capacity), 0) AS capacity,
           coalesce(sum(f.enrolled), 0) AS enrolled,
           coalesce(sum((f.free_by_age->>'total')::int), 0) AS free_places,
           d.geom_4326 AS geometry
    FROM districts d
    LEFT JOIN facilities f ON f.district_code = d.code AND f.status = ANY(:statuses)
    WHERE d.code LIKE :prefix
    GROUP BY d.code, d.name, d.geom_4326
    ORDER BY d.code
"""

_BY_DONG = """
    SELECT a.id, coalesce(a.mois_code, a.kostat_code) AS code, a.name, a.district_code,
           a.population_0_5,
           count(f.id) AS centres,
           coalesce(sum(f.capacity), 0) AS capacity,
           coalesce(sum(f.enrolled), 0) AS enrolled,
           coalesce(sum((f.free_by_age->>'total')::int), 0) AS free_places,
           a.geom_4326 AS geometry
    FROM admin_dongs a
    LEFT JOIN facilities f ON f.admin_dong_id = a.id AND f.status = ANY(:statuses)
    WHERE a.district_code LIKE :prefix
    GROUP BY a.id
    ORDER BY a.district_code, a.name
"""


def _with_ratios(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    pop = frame["population_0_5"].astype("float").where(frame["population_0_5"] > 0)
    frame["places_per_100_children"] = (frame["capacity"] / pop * 100).round(1)
    frame["occupancy"] = (frame["enrolled"] / frame["capacity"].where(frame["capacity"] > 0)).round(3)
    return frame


def supply_by_district(conn: Connection, *, sido_code: str = "11") -> gpd.GeoDataFrame:
    """Per 구 of one 시도: centres, 정원, 현원, free places, 0-5 population and places per 100 children
    (EPSG:4326 polygons)."""
    frame = gpd.read_postgis(text(_BY_DISTRICT), conn, geom_col="geometry",
                             params={"statuses": [s.value for s in OPERATING_STATUSES], "prefix": f"{sido_code}%"})
    return _with_ratios(frame)


def supply_by_dong(conn: Connection, *, sido_code: str = "11") -> gpd.GeoDataFrame:
    """The same per 행정동 (centres counted in the dong they lie in)."""
    frame = gpd.read_postgis(text(_BY_DONG), conn, geom_col="geometry",
                             params={"statuses": [s.value for s in OPERATING_STATUSES], "prefix": f"{sido_code}%"})
    return _with_ratios(frame)
