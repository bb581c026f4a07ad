"""Childcare supply against demand per 구 or 행정동: places, enrolment, free places and 0-5 population.

Only operating centres (정상/재개) count. ``places_per_100_children`` = 정원 / 0-5 population × 100, rounded to
one decimal in SQL (half away from zero), null without population: the planner's first indicator of a blind spot
(Seoul's 구 range roughly from 30 to 90).

The statistics are one SQL definition (``DISTRICT_FROM``, ``DONG_FROM``: each area joined LATERAL to its children
and its operating centres' totals) that both the analysis frames below and the ``districts`` / ``admin_dongs``
map layers (``geo.layers.areas``) select from, so the map and the analysis cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, FromClause, Integer, Numeric, Select, cast, func, select, true
from sqlalchemy.sql.elements import ColumnElement

from geo.domain import OPERATING_STATUSES
from geo.models.facilities import AdminDong, District, Facility

if TYPE_CHECKING:
    import geopandas as gpd

OPERATING = [s.value for s in OPERATING_STATUSES]


def places_per_100_children(places: Any, children: Any) -> ColumnElement[Any]:
    """places / children × 100 rounded to one decimal (numeric); null when there are no children."""
    return func.round(cast(places, Numeric) * 100 / func.nullif(children, 0), 1)


def utilisation_pct(supply: Any) -> ColumnElement[Any]:
    """현원 / 정원 × 100 of a supply row, one decimal (numeric); null without 정원 (as ``geo.statistics``)."""
    return func.round(cast(supply.c.enrolled, Numeric) * 100 / func.nullif(supply.c.places, 0), 1)


def operating_centres(name: str, where: Callable[[FromClause], ColumnElement[bool]]) -> Any:
    """A LATERAL row of the operating centres ``where(f)`` selects (``f``: facilities): ``centres`` (count),
    ``places`` (sum of 정원), ``enrolled`` (sum of 현원), ``free_places`` (sum of estimated free places); zeros
    when there is none."""
    f = Facility.__table__.alias(f"{name}_f")
    return (
        select(func.count(f.c.id).label("centres"),
               func.coalesce(func.sum(f.c.capacity), 0).label("places"),
               func.coalesce(func.sum(f.c.enrolled), 0).label("enrolled"),
               func.coalesce(func.sum(cast(f.c.free_by_age["total"].astext, Integer)), 0).label("free_places"))
        .where(where(f), f.c.status.in_(OPERATING))
        .lateral(name)
    )


# --- 구: children are the sum over its 행정동 ----------------------------------------------------------------
DISTRICT = District.__table__.alias("d")
_dong_pop = AdminDong.__table__.alias("d_pop")
DISTRICT_CHILDREN = (
    select(func.sum(_dong_pop.c.population_0_5).label("children_0_5"))
    .where(_dong_pop.c.district_code == DISTRICT.c.code)
    .lateral("d_children")
)
DISTRICT_SUPPLY = operating_centres("d_supply", lambda f: f.c.district_code == DISTRICT.c.code)
DISTRICT_FROM = DISTRICT.join(DISTRICT_CHILDREN, true()).join(DISTRICT_SUPPLY, true())
DISTRICT_PER_100 = places_per_100_children(DISTRICT_SUPPLY.c.places, DISTRICT_CHILDREN.c.children_0_5)

# --- 행정동: centres counted in the dong they lie in ------------------------------------------------------------
DONG = AdminDong.__table__.alias("a")
DONG_CODE = func.coalesce(DONG.c.mois_code, DONG.c.kostat_code)
DONG_SUPPLY = operating_centres("a_supply", lambda f: f.c.admin_dong_id == DONG.c.id)
DONG_FROM = DONG.join(DONG_SUPPLY, true())
DONG_PER_100 = places_per_100_children(DONG_SUPPLY.c.places, DONG.c.population_0_5)


def _district_select(sido_code: str) -> Select[Any]:
    return (select(DISTRICT.c.code, DISTRICT.c.name, DISTRICT_CHILDREN.c.children_0_5.label("population_0_5"),
                   DISTRICT_SUPPLY.c.centres, DISTRICT_SUPPLY.c.places.label("capacity"), DISTRICT_SUPPLY.c.enrolled,
                   DISTRICT_SUPPLY.c.free_places, DISTRICT_PER_100.label("places_per_100_children"),
                   DISTRICT.c.geom_4326.label("geometry"))
            .select_from(DISTRICT_FROM).where(DISTRICT.c.code.like(f"{sido_code}%")).order_by(DISTRICT.c.code))


def _dong_select(sido_code: str) -> Select[Any]:
    return (select(DONG.c.id, DONG_CODE.label("code"), DONG.c.name, DONG.c.district_code, DONG.c.population_0_5,
                   DONG_SUPPLY.c.centres, DONG_SUPPLY.c.places.label("capacity"), DONG_SUPPLY.c.enrolled,
                   DONG_SUPPLY.c.free_places, DONG_PER_100.label("places_per_100_children"),
                   DONG.c.geom_4326.label("geometry"))
            .select_from(DONG_FROM).where(DONG.c.district_code.like(f"{sido_code}%"))
            .order_by(DONG.c.district_code, DONG.c.name))


def _frame(conn: Connection, statement: Select[Any]) -> gpd.GeoDataFrame:
    import geopandas as gpd

    frame = gpd.read_postgis(statement, conn, geom_col="geometry")
    frame["places_per_100_children"] = frame["places_per_100_children"].astype("float")
    frame["occupancy"] = (frame["enrolled"] / frame["capacity"].where(frame["capacity"] > 0)).round(3)
    return frame


def supply_by_district(conn: Connection, *, sido_code: str = "11") -> gpd.GeoDataFrame:
    """Per 구 of one 시도: centres, 정원 (``capacity``), 현원, free places, 0-5 population and places per 100
    children (EPSG:4326 polygons)."""
    return _frame(conn, _district_select(sido_code))


def supply_by_dong(conn: Connection, *, sido_code: str = "11") -> gpd.GeoDataFrame:
    """The same per 행정동 (centres counted in the dong they lie in)."""
    return _frame(conn, _dong_select(sido_code))
