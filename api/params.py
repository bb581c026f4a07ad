"""Query parameters shared by several endpoints, as dependencies: facility filters, a page, the output format.

Bounds that do not depend on settings are declared here so that OpenAPI documents them; the domain checks them
again (``geo.validation``), so a notebook or the CLI gets the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Depends, Query
from pydantic import StringConstraints

from geo.domain import KOREA_BBOX_4326
from geo.search import FacilityFilters
from geo.search.filters import MAX_LIST_VALUES, MAX_MIN_FREE
from geo.validation import MAX_OFFSET, MAX_TEXT_LENGTH

Format = Literal["geojson", "json", "markers"]
MAX_LIMIT_PARAM = 10_000  # an absolute bound; the configured max_page_limit is checked by geo.validation
# Raw text may be up to four times the cleaned bound: a decomposed (NFD) syllable is two or three code points
# until clean_text normalises it to NFC, and surrounding blanks are stripped.
MAX_RAW_TEXT = 4 * MAX_TEXT_LENGTH
TEXT = {"max_length": MAX_RAW_TEXT}
ListValue = Annotated[str, StringConstraints(max_length=MAX_RAW_TEXT)]
LON_MIN, LAT_MIN, LON_MAX, LAT_MAX = KOREA_BBOX_4326


async def facility_filters(
    service: Annotated[list[ListValue] | None, Query(
        description="Required services, repeated or comma-separated: enum values (twenty_four_hour, holiday, "
                    "extended_hours, disability_integrated, disability_specialised, multicultural, infant_only, "
                    "hourly, ...; 24h is accepted for twenty_four_hour) or Korean labels (24시간, 휴일보육, "
                    "야간연장, 장애아통합, ...)", max_length=MAX_LIST_VALUES)] = None,
    service_match: Annotated[Literal["all", "any"], Query(
        description="all: every listed service (services @> list, default); any: at least one (&&)")] = "all",
    type: Annotated[list[ListValue] | None, Query(
        description="Facility types (national_public, private, home, ... or 국공립, 민간, 가정, ...)",
        max_length=MAX_LIST_VALUES)] = None,
    status: Annotated[list[ListValue] | None, Query(
        description="Statuses (active, reopened, suspended, closed, unlisted, 정상...); default operating = "
                    "active + reopened; 'all' for every status", max_length=MAX_LIST_VALUES)] = None,
    age: Annotated[int | None, Query(ge=0, le=5, description=(
        "Age class 0..5 (만 N세반) that needs free places; give age or birth_date, not both"))] = None,
    birth_date: Annotated[date | None, Query(description=(
        "Child's birth date, instead of age: placed in the 만 N세반 of the current childcare year "
        "(from 1 March); not in the future, at most 만5세"))] = None,
    min_free: Annotated[int, Query(ge=0, le=MAX_MIN_FREE,
                                   description="Free places needed for that age (0: age only)")] = 1,
    open_at: Annotated[datetime | None, Query(
        description="Must be open at this Korean local time (ISO 8601, e.g. 2026-07-25T21:00)")] = None,
    has_bus: Annotated[bool | None, Query(description="Runs a school bus (false: not known to)")] = None,
    cctv: Annotated[bool | None, Query(description="Has CCTV (cctv_count > 0)")] = None,
    name: Annotated[str | None, Query(description="Fragment of the centre name (case-insensitive, <= 100 "
                                                  "characters)", max_length=4 * MAX_TEXT_LENGTH)] = None,
    language: Annotated[list[ListValue] | None, Query(
        description="Languages the staff speak (ISO 639-1, repeated or comma-separated, e.g. zh,vi): centres "
                    "where someone speaks at least one", max_length=MAX_LIST_VALUES)] = None,
    evaluation_grade: Annotated[list[ListValue] | None, Query(
        description="Latest 평가제 grades (A, B, C, D; repeated or comma-separated): centres holding one of them",
        max_length=MAX_LIST_VALUES)] = None,
) -> FacilityFilters:
    """The shared filter parameters, parsed by ``geo.search.FacilityFilters.parse`` (on the event loop: pure CPU
    work of microseconds)."""
    return FacilityFilters.parse(
        services=service, services_match=service_match, types=type, status=status, age=age,
        birth_date=birth_date, min_free=min_free, open_at=open_at, has_bus=has_bus, has_cctv=cctv, name=name,
        languages=language, evaluation_grades=evaluation_grade,
    )


@dataclass(frozen=True)
class Page:
    """``limit``/``offset`` of a paged listing and whether to count every match."""

    limit: int
    offset: int
    count: Literal["auto", "exact"]


CountQuery = Annotated[Literal["auto", "exact"], Query(description=(
    "numberMatched: auto = given when the page reaches the last match (free); exact = always (counts every "
    "match, slower on large results)"))]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip")]


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT_PARAM, description="Page size (<= max_page_limit)")] = 50,
    offset: OffsetQuery = 0,
    count: CountQuery = "auto",
) -> Page:
    """The page parameters."""
    return Page(limit=limit, offset=offset, count=count)


FiltersDep = Annotated[FacilityFilters, Depends(facility_filters)]
PageDep = Annotated[Page, Depends(page_params)]
FormatQuery = Annotated[Format, Query(alias="f", description="geojson (default), json (a compact list) or "
                                                               "markers (the list with only what a map marker "
                                                               "shows: id, lon, lat, name, facility_type, "
                                                               "free_by_age, location_approximate)")]
# Searches answer only inside South Korea's bounding box; the domain checks it (geo.validation.validate_point) so
# that a swapped pair or a point abroad gets a precise 422, and OpenAPI documents the box.
KOREA_LAT = {"minimum": LAT_MIN, "maximum": LAT_MAX}
KOREA_LON = {"minimum": LON_MIN, "maximum": LON_MAX}
Lat = Annotated[float, Query(description=f"Latitude, degrees EPSG:4326, in South Korea ({LAT_MIN:g}..{LAT_MAX:g})",
                             json_schema_extra=KOREA_LAT)]
Lon = Annotated[float, Query(description=f"Longitude, degrees EPSG:4326, in South Korea ({LON_MIN:g}..{LON_MAX:g})",
                             json_schema_extra=KOREA_LON)]
OptionalLat = Annotated[float | None, Query(description="Optional point (with lon): order by distance from it; "
                                                         "degrees EPSG:4326 in South Korea",
                                            json_schema_extra=KOREA_LAT)]
OptionalLon = Annotated[float | None, Query(description="Optional point (with lat): order by distance from it; "
                                                         "degrees EPSG:4326 in South Korea",
                                            json_schema_extra=KOREA_LON)]
# Distances: the maximum is settings.search.max_radius_m, written into OpenAPI by api.openapi.
POSITIVE = {"exclusiveMinimum": 0}
