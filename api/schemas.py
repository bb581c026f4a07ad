"""Response shapes of the search API and their single serialiser.

``feature_collection`` (GeoJSON, RFC 7946) and ``facility_list`` (compact JSON) are the only places that
turn ``geo.search`` results into response bodies; every facilities endpoint uses them. The pydantic models
document those bodies in OpenAPI (handlers return plain dicts so that large pages are not validated twice).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo.domain import FACILITY_STATUS_KO, FACILITY_TYPE_KO, SERVICE_KO, FacilityStatus, FacilityType, Service
from geo.search import FacilityHit, SearchPage

COORD_DECIMALS = 7  # ~1 cm, RFC 7946 recommends no more than needed
DISTANCE_DECIMALS = 2  # centimetres

GEOJSON_MEDIA_TYPE = "application/geo+json"
JSON_MEDIA_TYPE = "application/json"


class Link(BaseModel):
    """An OGC API style link (``self``, ``next``, ``prev``, ``alternate``)."""

    href: str
    rel: str
    type: str
    title: str | None = None


class FacilityProperties(BaseModel):
    """What every result carries about a centre."""

    code: str = Field(description="어린이집코드 (or a derived key for sources without one)")
    name: str
    facility_type: str = Field(description="geo.domain.FacilityType value")
    facility_type_ko: str | None = Field(description="어린이집유형 label")
    status: str = Field(description="geo.domain.FacilityStatus value")
    status_ko: str | None
    address: str | None
    phone: str | None
    district_code: str | None
    sigungu_name: str | None
    capacity: int | None = Field(description="정원")
    enrolled: int | None = Field(description="현원")
    free_by_age: dict[str, int] | None = Field(
        description='Estimated free places by age class {"0".."5", "total"} (geo.domain.free_places_by_age)')
    services: list[str] = Field(description="geo.domain.Service values")
    services_ko: list[str]
    has_bus: bool | None
    cctv_count: int | None
    geocode_quality: str = Field(description="source | source_snapped (moved into its own 구) | "
                                             "legal_dong_centroid | district_centroid | ...")
    data_date: date | None
    distance_m: float | None = Field(description="Distance from the query point in metres (WGS84 spheroid)")
    catchment_radius_m: float | None = Field(default=None,
                                             description="Catchment radius applied (catchment search only)")


class PointGeometry(BaseModel):
    """GeoJSON Point in lon, lat (EPSG:4326)."""

    type: Literal["Point"]
    coordinates: tuple[float, float]


class FacilityFeature(BaseModel):
    """GeoJSON Feature of one centre; ``id`` is ``facilities.id``."""

    type: Literal["Feature"]
    id: int
    geometry: PointGeometry
    properties: FacilityProperties


class FacilityFeatureCollection(BaseModel):
    """A page of centres as GeoJSON, with OGC API Features paging members."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["FeatureCollection"]
    features: list[FacilityFeature]
    number_matched: int = Field(alias="numberMatched")
    number_returned: int = Field(alias="numberReturned")
    links: list[Link]
    query: dict[str, Any] = Field(description="The search as understood (point, radius, area, radii)")


class FacilityItem(FacilityProperties):
    """A centre in the compact JSON list."""

    id: int
    lon: float
    lat: float


class FacilityList(BaseModel):
    """A page of centres as a compact JSON list."""

    model_config = ConfigDict(populate_by_name=True)

    items: list[FacilityItem]
    number_matched: int = Field(alias="numberMatched")
    number_returned: int = Field(alias="numberReturned")
    links: list[Link]
    query: dict[str, Any]


class PlaceOut(BaseModel):
    """A place to move the map to (구, 행정동, 법정동, centre or an external geocoder's result)."""

    kind: Literal["district", "admin_dong", "legal_dong", "facility", "external"]
    code: str | None
    name: str
    label: str
    lon: float
    lat: float
    bbox_4326: list[float] | None = Field(description="lon_min, lat_min, lon_max, lat_max")
    district_code: str | None
    district_name: str | None
    facility_id: int | None
    source: str


class PlaceList(BaseModel):
    """Places matching a query, best first."""

    query: str
    places: list[PlaceOut]


class ReverseOut(BaseModel):
    """The 구 and 동 containing a point."""

    lat: float
    lon: float
    district: PlaceOut | None
    admin_dong: PlaceOut | None
    legal_dong: PlaceOut | None


def _ko(mapping: dict[Any, str], enum: type, value: str) -> str | None:
    try:
        return mapping[enum(value)]
    except ValueError:
        return None


def facility_properties(hit: FacilityHit) -> dict[str, Any]:
    """The properties of one centre (shared by GeoJSON and compact JSON)."""
    return {
        "code": hit.code,
        "name": hit.name,
        "facility_type": hit.facility_type,
        "facility_type_ko": _ko(FACILITY_TYPE_KO, FacilityType, hit.facility_type),
        "status": hit.status,
        "status_ko": _ko(FACILITY_STATUS_KO, FacilityStatus, hit.status),
        "address": hit.address,
        "phone": hit.phone,
        "district_code": hit.district_code,
        "sigungu_name": hit.sigungu_name,
        "capacity": hit.capacity,
        "enrolled": hit.enrolled,
        "free_by_age": hit.free_by_age,
        "services": hit.services,
        "services_ko": [label for s in hit.services if (label := _ko(SERVICE_KO, Service, s))],
        "has_bus": hit.has_bus,
        "cctv_count": hit.cctv_count,
        "geocode_quality": hit.geocode_quality,
        "data_date": hit.data_date.isoformat() if hit.data_date else None,
        "distance_m": round(hit.distance_m, DISTANCE_DECIMALS) if hit.distance_m is not None else None,
        "catchment_radius_m": hit.catchment_radius_m,
    }


def facility_feature(hit: FacilityHit) -> dict[str, Any]:
    """One centre as a GeoJSON Feature (lon, lat; 7 decimals)."""
    return {
        "type": "Feature",
        "id": hit.id,
        "geometry": {"type": "Point",
                     "coordinates": [round(hit.lon, COORD_DECIMALS), round(hit.lat, COORD_DECIMALS)]},
        "properties": facility_properties(hit),
    }


def feature_collection(page: SearchPage, *, links: list[dict[str, Any]]) -> dict[str, Any]:
    """A page as a GeoJSON FeatureCollection with ``numberMatched``/``numberReturned``/``links``."""
    return {
        "type": "FeatureCollection",
        "features": [facility_feature(hit) for hit in page.items],
        "numberMatched": page.number_matched,
        "numberReturned": page.number_returned,
        "links": links,
        "query": page.query,
    }


def facility_list(page: SearchPage, *, links: list[dict[str, Any]]) -> dict[str, Any]:
    """A page as a compact JSON list (``id``, ``lon``, ``lat`` + the properties per item)."""
    return {
        "items": [{"id": hit.id, "lon": round(hit.lon, COORD_DECIMALS), "lat": round(hit.lat, COORD_DECIMALS),
                   **facility_properties(hit)} for hit in page.items],
        "numberMatched": page.number_matched,
        "numberReturned": page.number_returned,
        "links": links,
        "query": page.query,
    }
