"""Response shapes of the API, for OpenAPI.

The search bodies are written by the database (``geo.search.sql``) and passed through (``api.responses``);
these models document them. ``tests/api`` validates real responses against them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo.search.fields import FIELDS


class Link(BaseModel):
    """An OGC API style link (``self``, ``next``, ``prev``, ``alternate``)."""

    href: str
    rel: str
    type: str
    title: str | None = None


def _centre(name: str) -> Any:
    """The field of a centre's public field ``name``, described as ``geo.search.fields`` defines it."""
    return Field(description=FIELDS[name].description)


class FacilityProperties(BaseModel):
    """What every result carries about a centre: its public fields of output ``search`` (``geo.search.fields``;
    tests/api/test_facility_fields.py keeps this model equal to them) and the search's own two."""

    code: str = _centre("code")
    name: str = _centre("name")
    facility_type: str = _centre("facility_type")
    facility_type_ko: str | None = _centre("facility_type_ko")
    status: str = _centre("status")
    status_ko: str | None = _centre("status_ko")
    district_code: str | None = _centre("district_code")
    sigungu_name: str | None = _centre("sigungu_name")
    address: str | None = _centre("address")
    phone: str | None = _centre("phone")
    capacity: int | None = _centre("capacity")
    enrolled: int | None = _centre("enrolled")
    free_by_age: dict[str, int] | None = _centre("free_by_age")
    services: list[str] = _centre("services")
    services_ko: list[str] = _centre("services_ko")
    has_bus: bool | None = _centre("has_bus")
    cctv_count: int | None = _centre("cctv_count")
    staff_languages: list[str] = _centre("staff_languages")
    evaluation_grade: str | None = _centre("evaluation_grade")
    evaluation_date: date | None = _centre("evaluation_date")
    geocode_quality: str = _centre("geocode_quality")
    location_approximate: bool = _centre("location_approximate")
    data_date: date | None = _centre("data_date")
    vacancy_as_of: datetime | None = _centre("vacancy_as_of")
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
    number_matched: int | None = Field(default=None, alias="numberMatched", description=(
        "All matches: given when the page reaches the last one, or always with count=exact"))
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
    number_matched: int | None = Field(default=None, alias="numberMatched")
    number_returned: int = Field(alias="numberReturned")
    links: list[Link]
    query: dict[str, Any]


class FacilityMarker(BaseModel):
    """A centre in the marker list (``f=markers``): only what a map marker and its list entry show."""

    id: int
    lon: float
    lat: float
    name: str = _centre("name")
    facility_type: str = _centre("facility_type")
    free_by_age: dict[str, int] | None = _centre("free_by_age")
    location_approximate: bool = _centre("location_approximate")
    vacancy_as_of: datetime | None = _centre("vacancy_as_of")


class FacilityMarkerList(BaseModel):
    """A page of centres as a marker list (``f=markers``)."""

    model_config = ConfigDict(populate_by_name=True)

    items: list[FacilityMarker]
    number_matched: int | None = Field(default=None, alias="numberMatched")
    number_returned: int = Field(alias="numberReturned")
    links: list[Link]
    query: dict[str, Any]


class PlaceOut(BaseModel):
    """A place to move the map to (구, 행정동, 법정동, a named building or apartment complex, a road-name address,
    centre or an external geocoder's result)."""

    kind: Literal["district", "admin_dong", "legal_dong", "building", "address", "facility", "external"]
    code: str | None
    name: str
    label: str
    lon: float
    lat: float
    bbox_4326: list[float] | None = Field(description="lon_min, lat_min, lon_max, lat_max")
    district_code: str | None
    district_name: str | None
    facility_id: int | None
    source: str = Field(description="postgis; for an address: centre_address (a centre's point at that address), "
                                    "interpolated (along the road between the nearest numbers), nearest_on_road; "
                                    "an external geocoder's URL")
    label_latin: str | None = Field(default=None, description="The 구/동 label in Revised Romanization "
                                                              "('Seogyo-dong, Mapo-gu')")


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


class ProblemError(BaseModel):
    """One malformed parameter as reported by request validation."""

    loc: list[str | int] = Field(description='Where: ["query", "lat"]')
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem (``application/problem+json``): every 4xx and 5xx of the API."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    type: str = Field(default="about:blank", description="A URI reference identifying the problem type")
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(ge=100, le=599, description="The HTTP status code")
    detail: str = Field(description="What went wrong with this request, for a human")
    instance: str | None = Field(default=None, description="The request path")
    param: str | None = Field(default=None, description="The input at fault (query or path parameter, header, "
                                                         "body field such as `free_by_age.2`; several comma-separated)")
    errors: list[ProblemError] | None = Field(default=None, description="Each malformed parameter (validation)")
    candidates: list[dict[str, Any]] | None = Field(default=None, description="Matches of an ambiguous name")
