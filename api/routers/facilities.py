"""Facility search endpoints: radius, k-nearest, administrative area and catchment.

Every endpoint takes the same filters and answers GeoJSON (``f=geojson``, default) or a compact JSON list
(``f=json``), paged with ``limit``/``offset`` (``k``/``offset`` for nearest) and OGC API style ``links``.
Handlers only parse input and call ``geo.search``; range checks live there (``InvalidQuery`` -> 422).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from api.deps import SessionDep, SettingsDep
from api.schemas import (
    GEOJSON_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    FacilityFeatureCollection,
    FacilityList,
    facility_list,
    feature_collection,
)
from geo.search import (
    FacilityFilters,
    SearchPage,
    area_search,
    catchment_search,
    nearest_search,
    radius_search,
)

router = APIRouter(prefix="/facilities", tags=["facilities"])

Format = Literal["geojson", "json"]
MEDIA_TYPES: dict[str, str] = {"geojson": GEOJSON_MEDIA_TYPE, "json": JSON_MEDIA_TYPE}
# Handlers return a ready JSONResponse (not validated again); the models document the bodies in OpenAPI.
PageModel = FacilityFeatureCollection | FacilityList
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "GeoJSON FeatureCollection as application/geo+json (f=geojson, default) or a compact "
                         "list as application/json (f=json)"},
    404: {"description": "Unknown district or dong (problem+json, RFC 9457)"},
    422: {"description": "Invalid query (problem+json, RFC 9457)"},
}


async def facility_filters(
    service: Annotated[list[str] | None, Query(
        description="Required services, repeated or comma-separated: enum values (24h, holiday, extended_hours, "
                    "disability_integrated, disability_specialised, multicultural, infant_only, hourly, ...) "
                    "or Korean labels (24시간, 휴일보육, 야간연장, 장애아통합, ...)")] = None,
    service_match: Annotated[str, Query(
        description="all: every listed service (services @> list, default); any: at least one (&&)")] = "all",
    type: Annotated[list[str] | None, Query(
        description="Facility types (national_public, private, home, ... or 국공립, 민간, 가정, ...)")] = None,
    status: Annotated[list[str] | None, Query(
        description="Statuses (active, reopened, suspended, closed, 정상...); default operating = active + "
                    "reopened; 'all' for every status")] = None,
    age: Annotated[int | None, Query(description="Age class 0..5 (만 N세반) that needs free places")] = None,
    birth_date: Annotated[date | None, Query(description="Child's birth date, instead of age")] = None,
    min_free: Annotated[int, Query(description="Free places needed for that age (0: age only)")] = 1,
    open_at: Annotated[datetime | None, Query(
        description="Must be open at this Korean local time (ISO 8601, e.g. 2026-07-25T21:00)")] = None,
    has_bus: Annotated[bool | None, Query(description="Runs a school bus (false: not known to)")] = None,
    cctv: Annotated[bool | None, Query(description="Has CCTV (cctv_count > 0)")] = None,
    name: Annotated[str | None, Query(description="Fragment of the centre name (case-insensitive)")] = None,
) -> FacilityFilters:
    """The shared filter parameters, parsed by ``geo.search.FacilityFilters.parse``.

    ``async`` only because parsing is pure CPU work of microseconds: it then runs on the event loop instead of
    taking a trip through the thread pool.
    """
    return FacilityFilters.parse(
        services=service, services_match=service_match, types=type, status=status, age=age,
        birth_date=birth_date, min_free=min_free, open_at=open_at, has_bus=has_bus, has_cctv=cctv, name=name,
    )


FiltersDep = Annotated[FacilityFilters, Depends(facility_filters)]
FormatQuery = Annotated[Format, Query(alias="f", description="geojson (default) or json")]
Lat = Annotated[float, Query(description="Latitude, degrees EPSG:4326")]
Lon = Annotated[float, Query(description="Longitude, degrees EPSG:4326")]
Offset = Annotated[int, Query(description="Results to skip")]


def page_links(request: Request, page: SearchPage, fmt: Format) -> list[dict[str, Any]]:
    """``self``, ``alternate`` (other format), ``prev`` and ``next`` links; other parameters kept as given."""
    url = request.url
    links = [
        {"href": str(url), "rel": "self", "type": MEDIA_TYPES[fmt], "title": "this page"},
    ]
    for other, media_type in MEDIA_TYPES.items():
        if other != fmt:
            links.append({"href": str(url.include_query_params(f=other)), "rel": "alternate",
                          "type": media_type, "title": f"this page as {other}"})
    if page.previous_offset is not None:
        links.append({"href": str(url.include_query_params(offset=page.previous_offset)), "rel": "prev",
                      "type": MEDIA_TYPES[fmt], "title": "previous page"})
    if page.next_offset is not None:
        links.append({"href": str(url.include_query_params(offset=page.next_offset)), "rel": "next",
                      "type": MEDIA_TYPES[fmt], "title": "next page"})
    return links


def respond(request: Request, page: SearchPage, fmt: Format) -> JSONResponse:
    """The page in the requested format (the one serialiser in ``api.schemas``)."""
    links = page_links(request, page, fmt)
    body = feature_collection(page, links=links) if fmt == "geojson" else facility_list(page, links=links)
    return JSONResponse(body, media_type=MEDIA_TYPES[fmt])


@router.get("/radius", summary="Centres within a radius, nearest first",
            response_model=PageModel, responses=RESPONSES)
def radius(
    request: Request, session: SessionDep, settings: SettingsDep, filters: FiltersDep,
    lat: Lat, lon: Lon,
    radius_m: Annotated[float, Query(description="Radius in metres (0 < r <= max_radius_m)")],
    f: FormatQuery = "geojson",
    limit: Annotated[int, Query(description="Page size (<= max_page_limit)")] = 50,
    offset: Offset = 0,
) -> JSONResponse:
    """Centres within ``radius_m`` metres of the point (ST_DWithin on geography), with ``distance_m``."""
    page = radius_search(session, lat=lat, lon=lon, radius_m=radius_m, filters=filters, limit=limit,
                         offset=offset, settings=settings)
    return respond(request, page, f)


@router.get("/nearest", summary="The k nearest centres",
            response_model=PageModel, responses=RESPONSES)
def nearest(
    request: Request, session: SessionDep, settings: SettingsDep, filters: FiltersDep,
    lat: Lat, lon: Lon,
    k: Annotated[int, Query(description="How many nearest centres (page size)")] = 10,
    max_distance_m: Annotated[float | None, Query(description="Only centres within this many metres")] = None,
    f: FormatQuery = "geojson",
    offset: Offset = 0,
) -> JSONResponse:
    """The ``k`` nearest centres passing the filters (KNN on geography, exact distance order)."""
    page = nearest_search(session, lat=lat, lon=lon, k=k, offset=offset, max_distance_m=max_distance_m,
                          filters=filters, settings=settings)
    return respond(request, page, f)


@router.get("/area", summary="Centres in a 구 or 행정동",
            response_model=PageModel, responses=RESPONSES)
def area(
    request: Request, session: SessionDep, settings: SettingsDep, filters: FiltersDep,
    district: Annotated[str | None, Query(description="구: districts.code (11440) or name (마포구)")] = None,
    dong: Annotated[str | None, Query(
        description="행정동: mois_code, kostat_code or name (서교동; give district too when the name repeats)")] = None,
    lat: Annotated[float | None, Query(description="Optional point: order by distance from it")] = None,
    lon: Annotated[float | None, Query(description="Optional point: order by distance from it")] = None,
    f: FormatQuery = "geojson",
    limit: Annotated[int, Query(description="Page size (<= max_page_limit)")] = 50,
    offset: Offset = 0,
) -> JSONResponse:
    """Centres located in the area (point-in-polygon), by name or by distance from an optional point."""
    page = area_search(session, district=district, dong=dong, lat=lat, lon=lon, filters=filters, limit=limit,
                       offset=offset, settings=settings)
    return respond(request, page, f)


@router.get("/catchment", summary="Centres whose catchment contains a home",
            response_model=PageModel, responses=RESPONSES)
def catchment(
    request: Request, session: SessionDep, settings: SettingsDep, filters: FiltersDep,
    lat: Lat, lon: Lon,
    f: FormatQuery = "geojson",
    limit: Annotated[int, Query(description="Page size (<= max_page_limit)")] = 50,
    offset: Offset = 0,
) -> JSONResponse:
    """Centres within their type's catchment radius of the home (shorter for ages 0-2), nearest first."""
    page = catchment_search(session, lat=lat, lon=lon, filters=filters, limit=limit, offset=offset,
                            settings=settings)
    return respond(request, page, f)
