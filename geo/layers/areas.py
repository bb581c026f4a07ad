"""구 (districts) and 행정동 (admin_dongs) layers with their childcare supply statistics.

The statistics are those of ``geo.analysis.supply`` (and of the 보육통계 tables, ``geo.statistics``: the same
operating centres, 정원, 현원 and utilisation) (the same SQL: only operating centres (정상/재개) count;
``places`` is the sum of 정원; ``places_per_100_children`` = places / 0-5 population × 100, rounded to one decimal,
null without population). Each is computed per request from the current rows, so a layer is never behind its data.
"""

from __future__ import annotations

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
from geo.layers.base import Layer, Property

DISTRICTS = Layer(
    id="districts",
    title="구 (districts) with childcare supply",
    description="시군구 boundaries with 0-5 population, operating centres, places and places per 100 children.",
    from_=DISTRICT_FROM,
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
    from_=DONG_FROM,
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
    ),
    minzoom=9,
    maxzoom=18,
    tile_properties=((0, ("name", "places_per_100_children")),
                     (13, ("code", "name", "children_0_5", "centres", "places", "places_per_100_children"))),
)
