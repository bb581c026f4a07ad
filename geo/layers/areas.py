"""구 (districts) and 행정동 (admin_dongs) layers with their childcare supply statistics.

The statistics follow ``geo.analysis.supply``: only operating centres (정상/재개) count; ``places`` is the sum
of 정원; ``places_per_100_children`` = places / 0-5 population × 100, rounded to one decimal, null without
population. Each is computed per request from the current rows, so a layer is never behind its data.
"""

from __future__ import annotations

from sqlalchemy import Numeric, cast, func, select, true

from geo.domain import OPERATING_STATUSES
from geo.layers.base import Layer, Property
from geo.models.facilities import AdminDong, District, Facility

_OPERATING = [s.value for s in OPERATING_STATUSES]


def _per_100(places, children):
    return func.round(cast(places, Numeric) * 100 / func.nullif(children, 0), 1)


# --- 구 ---------------------------------------------------------------------------------------------------
_d = District.__table__.alias("d")
_pop_d = AdminDong.__table__.alias("pop_dong")
_fac_d = Facility.__table__.alias("fac_d")
_d_children = (
    select(func.sum(_pop_d.c.population_0_5).label("children_0_5"))
    .where(_pop_d.c.district_code == _d.c.code)
    .lateral("d_children")
)
_d_supply = (
    select(func.count(_fac_d.c.id).label("centres"),
           func.coalesce(func.sum(_fac_d.c.capacity), 0).label("places"))
    .where(_fac_d.c.district_code == _d.c.code, _fac_d.c.status.in_(_OPERATING))
    .lateral("d_supply")
)

DISTRICTS = Layer(
    id="districts",
    title="구 (districts) with childcare supply",
    description="시군구 boundaries with 0-5 population, operating centres, places and places per 100 children.",
    from_=_d.join(_d_children, true()).join(_d_supply, true()),
    id_column=_d.c.code,
    geometry=_d.c.geom_4326,
    geometry_type="MultiPolygon",
    properties=(
        Property("name", "string", _d.c.name, "시군구 name"),
        Property("sido_name", "string", _d.c.sido_name, "시도 name"),
        Property("children_0_5", "integer", _d_children.c.children_0_5, "children aged 0-5 (sum of its 행정동)"),
        Property("centres", "integer", _d_supply.c.centres, "operating centres"),
        Property("places", "integer", _d_supply.c.places, "정원 of operating centres"),
        Property("places_per_100_children", "number",
                 _per_100(_d_supply.c.places, _d_children.c.children_0_5), "places per 100 children aged 0-5"),
    ),
    minzoom=5,
    maxzoom=16,
    tile_properties=((0, ("name", "places_per_100_children")),
                     (10, ("name", "children_0_5", "centres", "places", "places_per_100_children"))),
)

# --- 행정동 -------------------------------------------------------------------------------------------------
_a = AdminDong.__table__.alias("a")
_fac_a = Facility.__table__.alias("fac_a")
_a_supply = (
    select(func.count(_fac_a.c.id).label("centres"),
           func.coalesce(func.sum(_fac_a.c.capacity), 0).label("places"))
    .where(_fac_a.c.admin_dong_id == _a.c.id, _fac_a.c.status.in_(_OPERATING))
    .lateral("a_supply")
)

ADMIN_DONGS = Layer(
    id="admin_dongs",
    title="행정동 (administrative dongs) with childcare supply",
    description="행정동 boundaries with 0-5 population, operating centres, places and places per 100 children.",
    from_=_a.join(_a_supply, true()),
    id_column=_a.c.id,
    geometry=_a.c.geom_4326,
    geometry_type="MultiPolygon",
    properties=(
        Property("code", "string", func.coalesce(_a.c.mois_code, _a.c.kostat_code), "행정기관코드 or KOSTAT code"),
        Property("name", "string", _a.c.name, "행정동 name"),
        Property("district_code", "string", _a.c.district_code, "5-digit 시군구 code"),
        Property("children_0_5", "integer", _a.c.population_0_5, "children aged 0-5"),
        Property("centres", "integer", _a_supply.c.centres, "operating centres in the 행정동"),
        Property("places", "integer", _a_supply.c.places, "정원 of operating centres"),
        Property("places_per_100_children", "number",
                 _per_100(_a_supply.c.places, _a.c.population_0_5), "places per 100 children aged 0-5"),
    ),
    minzoom=9,
    maxzoom=18,
    tile_properties=((0, ("name", "places_per_100_children")),
                     (13, ("code", "name", "children_0_5", "centres", "places", "places_per_100_children"))),
)
