"""Network catchments: ``GET /isochrones`` (walking or driving time from a point, and the centres inside).

Response: one GeoJSON FeatureCollection (RFC 7946, ``application/geo+json``) that any map library draws as is.
The first feature is the catchment polygon (``properties.kind = "isochrone"``: network, mode, minutes,
``area_km2``, the vertex the point was snapped to, ``facilities_matched``); the features after it are the
centres inside the polygon (``properties.kind = "facility"``, otherwise the same properties as ``/facilities``),
nearest to the point first, at most ``limit``. ``query`` echoes the request as understood.

Handlers only parse input and call ``geo.isochrones.isochrone``; a missing road network is 409
(``RoutingUnavailable``), a point more than 500 m from the network 422 (``InvalidQuery``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import SessionDep, SettingsDep
from api.params import FiltersDep
from api.responses import GEOJSON_MEDIA_TYPE
from geo.isochrones import DEFAULT_BUFFER_M, MAX_MINUTES, isochrone
from geo.validation import clean_text, validate_page

router = APIRouter(tags=["isochrones"])

BufferM = Annotated[float, Query(gt=0, le=500, description="Metres claimed on each side of a reached road")]

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "GeoJSON FeatureCollection: the catchment polygon, then the centres inside it",
          "content": {GEOJSON_MEDIA_TYPE: {}}},
    409: {"description": "No road network imported (problem+json); run `dolbom osm import FILE.osm`"},
    422: {"description": "Invalid query or a point outside the road network (problem+json, RFC 9457)"},
}


@router.get("/isochrones", summary="Area reachable within N minutes on foot or by car, and its centres",
            responses=RESPONSES, response_class=JSONResponse)
def get_isochrone(
    session: SessionDep,
    settings: SettingsDep,
    filters: FiltersDep,
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude of the start, degrees EPSG:4326")],
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude of the start, degrees EPSG:4326")],
    minutes: Annotated[float, Query(gt=0, le=MAX_MINUTES, description="Travel time budget, 0 < minutes <= 60")],
    mode: Annotated[Literal["walk", "drive"], Query(
        description="walk: 4.8 km/h on every road but motorways/trunk roads, both ways; drive: speed limit "
                    "or road-class speed, one-way streets respected")] = "walk",
    network: Annotated[str | None, Query(
        description="Road network name (`dolbom osm import --network`); default: nearest network",
        max_length=100)] = None,
    buffer_m: BufferM = DEFAULT_BUFFER_M,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="At most this many centres (default and maximum: "
                                                   "max_page_limit)")] = None,
) -> JSONResponse:
    """The catchment polygon of ``minutes`` of travel from the point and the centres inside it."""
    page_limit = limit if limit is not None else settings.search.max_page_limit
    validate_page(limit=page_limit, offset=0, settings=settings)
    network = clean_text(network, param="network")
    result = isochrone(session.connection(), lat=lat, lon=lon, minutes=minutes, mode=mode, network=network,
                       buffer_m=buffer_m, filters=filters, facility_limit=page_limit, settings=settings)
    facilities = [{**feature, "properties": {"kind": "facility", **feature["properties"]}}
                  for feature in result.facilities_page.features]
    body = {
        "type": "FeatureCollection",
        "features": [result.feature(), *facilities],
        "query": {"lat": lat, "lon": lon, "minutes": minutes, "mode": mode, "network": result.network,
                  "buffer_m": buffer_m, "limit": page_limit},
    }
    return JSONResponse(body, media_type=GEOJSON_MEDIA_TYPE)
