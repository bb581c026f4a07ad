"""구 (districts) and 행정동 (admin_dongs) layers with their childcare supply statistics.

The statistics are those of ``geo.analysis.supply`` (and of the 보육통계 tables, ``geo.statistics``: the same
operating centres, 정원, 현원 and utilisation) (the same SQL: only operating centres (정상/재개) count;
``places`` is the sum of 정원; ``places_per_100_children`` = places / 0-5 population × 100, rounded to one decimal,
null without population). Each is computed per request from the current rows, so a layer is never behind its data.

Both layers also carry the per-area counts of the 보육통계 tables (``geo.statistics.tables``), joined from the
tables' own SQL (``per_area_sql``) so the map and the statistics cannot drift: operating centres by type
(``centres_<type>``, table ``places``), free places by class age (``free_age_0`` .. ``free_age_5``, table
``free_places``), staff by role (``staff_<role>``, ``staff_total``, table ``staff``) and ``centres_with_cctv``,
``cctv_cameras``, ``centres_with_bus`` (table ``equipment``); 0 where an area has no operating centre.
"""

from __future__ import annotations

from sqlalchemy import ARRAY, Integer, String, Subquery, bindparam, column, func, text

from geo.analysis.supply import (
    DISTRICT,
    DISTRICT_CHILDREN,
    DISTRICT_FROM,
    DISTRICT_PER_100,
    DISTRICT_SUPPLY,
    DONG,
    DONG_CODE,
    DONG_FROM,
    DONG_PER_100,
    DONG_SUPPLY,
    utilisation_pct,
)
from geo.domain import FACILITY_TYPE_KO, OPERATING_STATUS_VALUES, FacilityType
from geo.layers.base import Layer, Property
from geo.statistics.tables import AGES, STAFF_ROLES, Level, per_area_sql

# (property, table, the table's column, filter on the table's facility_type or None): the per-area counts.
_STATISTICS: tuple[tuple[str, str, str, str | None], ...] = (
    *((f"centres_{t.value}", "places", "centres", t.value) for t in FacilityType),
    *((f"free_age_{a}", "free_places", f"free_{a}", None) for a in AGES),
    *((f"staff_{role}", "staff", role, None) for role, _, _ in STAFF_ROLES),
    ("centres_with_cctv", "equipment", "centres_with_cctv", None),
    ("cctv_cameras", "equipment", "cctv_cameras", None),
    ("centres_with_bus", "equipment", "centres_with_bus", None),
)


def _about(table: str, col: str, ftype: str | None) -> str:
    if table == "places":
        return f"operating {FACILITY_TYPE_KO[FacilityType(str(ftype))]} centres (보육통계 places)"
    if table == "free_places":
        return f"estimated free places in 만 {col[-1]}세반 (보육통계 free_places)"
    if table == "staff":
        return f"staff of operating centres: {col} (보육통계 staff)"
    return f"{col.replace('_', ' ')} of operating centres (보육통계 equipment)"


def _statistics(level: Level, key: str, name: str) -> Subquery:
    """One row per area key (``district_code`` or ``dong_code``) with every ``_STATISTICS`` property, pivoted from
    the tables' SQL at ``level``."""
    parts = []
    for table in dict.fromkeys(t for _, t, _, _ in _STATISTICS):
        picks = ", ".join(
            f"sum({col}) FILTER (WHERE facility_type = '{ftype}') AS {prop}" if ftype else f"sum({col}) AS {prop}"
            for prop, t, col, ftype in _STATISTICS if t == table)
        parts.append(f"(SELECT {key}, {picks} FROM ({per_area_sql(table, level)}) {table}_t GROUP BY {key}) {table}")  # noqa: S608
    joined = parts[0] + "".join(f" FULL JOIN {p} USING ({key})" for p in parts[1:])
    # Every fragment is a fixed name from this module or the tables' fixed SQL; the one value is bound.
    sql = f"SELECT {key}, {', '.join(prop for prop, *_ in _STATISTICS)} FROM {joined}"  # noqa: S608
    return (text(sql).bindparams(bindparam("operating", value=list(OPERATING_STATUS_VALUES), type_=ARRAY(String)))
            .columns(column(key, String), *(column(prop, Integer) for prop, *_ in _STATISTICS)).subquery(name))


DISTRICT_STATISTICS = _statistics(Level.sigungu, "district_code", "d_statistics")
DONG_STATISTICS = _statistics(Level.dong, "dong_code", "a_statistics")


def _statistics_properties(stats: Subquery) -> tuple[Property, ...]:
    return tuple(Property(prop, "integer", func.coalesce(stats.c[prop], 0), _about(table, col, ftype))
                 for prop, table, col, ftype in _STATISTICS)


DISTRICTS = Layer(
    id="districts",
    title="구 (districts) with childcare supply",
    description="시군구 boundaries with 0-5 population, operating centres, places and places per 100 children.",
    from_=DISTRICT_FROM.outerjoin(DISTRICT_STATISTICS, DISTRICT_STATISTICS.c.district_code == DISTRICT.c.code),
    id_column=DISTRICT.c.code,
    geometry=DISTRICT.c.geom_4326,
    geometry_type="MultiPolygon",
    properties=(
        Property("name", "string", DISTRICT.c.name, "시군구 name"),
        Property("sido_name", "string", DISTRICT.c.sido_name, "시도 name"),
        Property("children_0_5", "integer", DISTRICT_CHILDREN.c.children_0_5, "children aged 0-5 (sum of its 행정동)"),
        Property("centres", "integer", DISTRICT_SUPPLY.c.centres, "operating centres"),
        Property("places", "integer", DISTRICT_SUPPLY.c.places, "정원 of operating centres"),
        Property("enrolled", "integer", DISTRICT_SUPPLY.c.enrolled, "현원 of operating centres"),
        Property("free_places", "integer", DISTRICT_SUPPLY.c.free_places, "정원 − 현원 of operating centres"),
        Property("utilisation_pct", "number", utilisation_pct(DISTRICT_SUPPLY), "현원 / 정원 × 100 (보육통계)"),
        Property("places_per_100_children", "number", DISTRICT_PER_100, "places per 100 children aged 0-5"),
        *_statistics_properties(DISTRICT_STATISTICS),
    ),
    minzoom=5,
    maxzoom=16,
    tile_properties=((0, ("name", "places_per_100_children")),
                     (10, ("name", "children_0_5", "centres", "places", "places_per_100_children"))),
)

ADMIN_DONGS = Layer(
    id="admin_dongs",
    title="행정동 (administrative dongs) with childcare supply",
    description="행정동 boundaries with 0-5 population, operating centres, places and places per 100 children.",
    from_=DONG_FROM.outerjoin(DONG_STATISTICS, DONG_STATISTICS.c.dong_code == DONG_CODE),
    id_column=DONG.c.id,
    geometry=DONG.c.geom_4326,
    geometry_type="MultiPolygon",
    properties=(
        Property("code", "string", DONG_CODE, "행정기관코드 or KOSTAT code"),
        Property("name", "string", DONG.c.name, "행정동 name"),
        Property("district_code", "string", DONG.c.district_code, "5-digit 시군구 code"),
        Property("children_0_5", "integer", DONG.c.population_0_5, "children aged 0-5"),
        Property("centres", "integer", DONG_SUPPLY.c.centres, "operating centres in the 행정동"),
        Property("places", "integer", DONG_SUPPLY.c.places, "정원 of operating centres"),
        Property("enrolled", "integer", DONG_SUPPLY.c.enrolled, "현원 of operating centres"),
        Property("free_places", "integer", DONG_SUPPLY.c.free_places, "정원 − 현원 of operating centres"),
        Property("utilisation_pct", "number", utilisation_pct(DONG_SUPPLY), "현원 / 정원 × 100 (보육통계)"),
        Property("places_per_100_children", "number", DONG_PER_100, "places per 100 children aged 0-5"),
        *_statistics_properties(DONG_STATISTICS),
    ),
    minzoom=9,
    maxzoom=18,
    tile_properties=((0, ("name", "places_per_100_children")),
                     (13, ("code", "name", "children_0_5", "centres", "places", "places_per_100_children"))),
)
