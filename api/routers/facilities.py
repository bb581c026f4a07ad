"""Facility search endpoints: radius, k-nearest, administrative area and catchment.

Every endpoint takes the same filters and answers GeoJSON (``f=geojson``, default) or a compact JSON list
(``f=json``), paged with ``limit``/``offset`` (``k``/``offset`` for nearest) and OGC API style ``links``.
Handlers parse input and call ``geo.search``; they run on the event loop with an async read connection.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import ReadConnDep, SettingsDep
from api.params import (
    MAX_LIMIT_PARAM,
    POSITIVE,
    TEXT,
    CountQuery,
    FiltersDep,
    FormatQuery,
    Lat,
    Lon,
    OffsetQuery,
    OptionalLat,
    OptionalLon,
    PageDep,
)
from api.responses import GEOJSON_MEDIA_TYPE, SHAPES, page_response
from api.schemas.facilities import FacilityFeatureCollection, FacilityList, FacilityMarkerList
from geo.search import (
    area_lookup_statement,
    catchment_statement,
    nearest_statement,
    radius_statement,
    run_area_async,
    run_async,
)
from geo.search.results import SearchPage

router = APIRouter(prefix="/facilities", tags=["facilities"])

PageModel = FacilityFeatureCollection | FacilityList | FacilityMarkerList
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "GeoJSON FeatureCollection as application/geo+json (f=geojson, default) or a compact "
                         "list as application/json (f=json)",
          "content": {GEOJSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FacilityFeatureCollection"}}}},
}
AREA_RESPONSES = {**RESPONSES, 404: {"description": "Unknown district or dong (problem+json, RFC 9457)"}}


@router.get("/radius", summary="Centres within a radius, nearest first",
            response_model=PageModel, responses=RESPONSES)
async def radius(
    request: Request, conn: ReadConnDep, settings: SettingsDep, filters: FiltersDep, page: PageDep,
    lat: Lat, lon: Lon,
    radius_m: Annotated[float, Query(description="Radius in metres (0 < r <= max_radius_m, default 50 km)",
                                     json_schema_extra=POSITIVE)],
    f: FormatQuery = "geojson",
) -> Response:
    """Centres within ``radius_m`` metres of the point (ST_DWithin on geography), with ``distance_m``."""
    statement = radius_statement(lat=lat, lon=lon, radius_m=radius_m, filters=filters, limit=page.limit,
                                 offset=page.offset, settings=settings, shape=SHAPES[f])
    return page_response(request, await run_async(conn, statement, count=page.count), f)


@router.get("/nearest", summary="The k nearest centres",
            response_model=PageModel, responses=RESPONSES)
async def nearest(
    request: Request, conn: ReadConnDep, settings: SettingsDep, filters: FiltersDep,
    lat: Lat, lon: Lon,
    k: Annotated[int, Query(ge=1, le=MAX_LIMIT_PARAM, description="How many nearest centres (page size)")] = 10,
    max_distance_m: Annotated[float | None, Query(description="Only centres within this many metres "
                                                              "(<= max_radius_m)", json_schema_extra=POSITIVE)] = None,
    f: FormatQuery = "geojson",
    offset: OffsetQuery = 0,
    count: CountQuery = "auto",
) -> Response:
    """The ``k`` nearest centres passing the filters (KNN on geography, exact distance order)."""
    statement = nearest_statement(lat=lat, lon=lon, k=k, offset=offset, max_distance_m=max_distance_m,
                                  filters=filters, settings=settings, shape=SHAPES[f])
    return page_response(request, await run_async(conn, statement, count=count), f)


@router.get("/area", summary="Centres in a 구 or 행정동",
            response_model=PageModel, responses=AREA_RESPONSES)
async def area(
    request: Request, conn: ReadConnDep, settings: SettingsDep, filters: FiltersDep, page: PageDep,
    district: Annotated[str | None, Query(description="구: districts.code (11440) or name (마포구)", **TEXT)] = None,
    dong: Annotated[str | None, Query(
        description="행정동: mois_code, kostat_code or name (서교동; give district too when the name repeats)",
        **TEXT)] = None,
    lat: OptionalLat = None,
    lon: OptionalLon = None,
    f: FormatQuery = "geojson",
) -> Response:
    """Centres located in the area (point-in-polygon), by name or by distance from an optional point."""
    # The area is resolved in the page's own statement: one round trip (#24).
    statement = area_lookup_statement(district=district, dong=dong, lat=lat, lon=lon, filters=filters,
                                      limit=page.limit, offset=page.offset, settings=settings, shape=SHAPES[f])
    return page_response(request, await run_area_async(conn, statement, count=page.count), f)


@router.get("/catchment", summary="Centres whose catchment contains a home",
            response_model=PageModel, responses=RESPONSES)
async def catchment(
    request: Request, conn: ReadConnDep, settings: SettingsDep, filters: FiltersDep, page: PageDep,
    lat: Lat, lon: Lon,
    f: FormatQuery = "geojson",
) -> Response:
    """Centres within their type's catchment radius of the home (shorter for ages 0-2), nearest first."""
    statement = catchment_statement(lat=lat, lon=lon, filters=filters, limit=page.limit, offset=page.offset,
                                    settings=settings, shape=SHAPES[f])
    result = statement if isinstance(statement, SearchPage) else await run_async(conn, statement,
                                                                                 count=page.count)
    return page_response(request, result, f)
