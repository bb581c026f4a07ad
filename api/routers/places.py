"""Place search and reverse lookup (offline in PostGIS; an external geocoder is optional)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import ReadSessionDep, SettingsDep
from api.params import Lat, Lon
from api.schemas.facilities import PlaceList, ReverseOut
from geo.search.places import Geocoder, clean_query, geocoder_for, reverse_lookup

router = APIRouter(prefix="/places", tags=["places"])


def get_geocoder(session: ReadSessionDep, settings: SettingsDep) -> Geocoder:
    """The configured geocoder (override in tests with ``app.dependency_overrides``)."""
    return geocoder_for(session, settings=settings)


GeocoderDep = Annotated[Geocoder, Depends(get_geocoder)]


@router.get("/search", summary="Find 구, 동, centres and addresses by name", response_model=PlaceList)
def search(
    geocoder: GeocoderDep, settings: SettingsDep,
    q: Annotated[str, Query(description="Korean name or address fragment, e.g. '마포구 서교동', '해님어린이집'",
                            max_length=400)],
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many places (<= 50)")] = 10,
) -> dict[str, Any]:
    """Places matching every word of ``q``: 구, 행정동, 법정동, then operating centres (name or address)."""
    cleaned, _ = clean_query(q, limit=limit, settings=settings)
    return {"query": cleaned, "places": [p.as_dict() for p in geocoder.search(cleaned, limit=limit)]}


@router.get("/reverse", summary="The 구 and 동 of a point", response_model=ReverseOut,
            responses={404: {"description": "No loaded 구 or 동 contains the point (problem+json, RFC 9457)"}})
def reverse(
    session: ReadSessionDep,
    lat: Lat,
    lon: Lon,
) -> dict[str, Any]:
    """The 구, 행정동 and 법정동 containing the clicked point (point-in-polygon, offline)."""
    return reverse_lookup(session, lat=lat, lon=lon).as_dict()
