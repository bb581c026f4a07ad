"""The planner's blind spots: the blind-spot cells of the latest saved planner run of each service type.

Source: ``planner_cells`` (see :mod:`geo.analysis.planner` for the definitions) of the most recent
``planner_runs`` row per ``service`` (by ``created_at``, then id). A feature id is ``{service}-{cell_i}-{cell_j}``
(the EPSG:5179 grid column and row), stable across re-runs with the same grid.
"""

from __future__ import annotations

from sqlalchemy import String, and_, cast, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from geo.layers.base import Layer, Property
from geo.models.planner import PlannerCell, PlannerRun

_runs = PlannerRun.__table__.alias("br")
_c = PlannerCell.__table__.alias("bc")
_latest = (
    select(_runs.c.id, _runs.c.service, _runs.c.area_code, _runs.c.cell_m, _runs.c.catchment_m)
    .ext(distinct_on(_runs.c.service))
    .order_by(_runs.c.service, _runs.c.created_at.desc(), _runs.c.id.desc())
    .subquery("latest_run")
)

LAYER = Layer(
    id="blind_spots",
    title="Blind spots of the planner (latest run per service type)",
    description="Grid cells with children beyond reach of enough places (E2SFCA below the threshold or no centre "
                "in reach), ranked by the places missing; the latest saved planner run of each service type.",
    from_=_c.join(_latest, and_(_latest.c.id == _c.c.run_id, _c.c.blind_spot)),
    id_column=func.concat(_latest.c.service, "-", cast(_c.c.cell_i, String), "-",
                          cast(_c.c.cell_j, String)).cast(String),
    geometry=_c.c.geom_4326,
    geometry_type="MultiPolygon",
    properties=(
        Property("service", "string", _latest.c.service, "service type of the run (all, twenty_four_hour, ...)"),
        Property("run_id", "integer", _c.c.run_id, "planner run"),
        Property("area_code", "string", _latest.c.area_code, "시도 or 구 code prefix of the area studied"),
        Property("cell_m", "number", _latest.c.cell_m, "grid cell size, metres (EPSG:5179)"),
        Property("catchment_m", "number", _latest.c.catchment_m, "catchment of the run, metres"),
        Property("district_code", "string", _c.c.district_code, "5-digit 시군구 code"),
        Property("admin_dong_id", "integer", _c.c.admin_dong_id, "행정동 (admin_dongs id)"),
        Property("children", "number", _c.c.children, "children aged 0-5 in the cell (demand spread on the grid)"),
        Property("centres", "integer", _c.c.centres, "operating centres inside the cell"),
        Property("places", "integer", _c.c.places, "정원 of the centres inside the cell"),
        Property("places_in_reach", "number", _c.c.places_in_reach, "places of the centres within the catchment"),
        Property("nearest_m", "number", _c.c.nearest_m, "straight distance to the nearest centre, metres"),
        Property("sfca", "number", _c.c.sfca, "2SFCA places per child"),
        Property("e2sfca", "number", _c.c.e2sfca, "E2SFCA places per child"),
        Property("desert", "boolean", _c.c.desert, "childcare-desert rule (> 50 children and > 3 per place or none)"),
        Property("gap_places", "number", _c.c.gap_places, "places missing to reach the children-per-place target"),
        Property("blind_rank", "integer", _c.c.blind_rank, "rank among the run's blind spots (1 = largest gap)"),
    ),
    minzoom=8,
    maxzoom=18,
    tile_properties=((0, ("service", "blind_rank", "gap_places")),
                     (12, ("service", "blind_rank", "gap_places", "children", "places_in_reach", "e2sfca",
                           "desert"))),
)
