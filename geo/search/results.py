"""Search results: one centre (``FacilityHit``) and one page (``SearchPage``).

The SQL of ``geo.search.sql`` builds each result as a GeoJSON Feature (RFC 7946) in the database; that is the one
row -> result mapping. ``FacilityHit.from_feature`` reads such a feature back for Python callers, and the API
passes the database's JSON text through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class FacilityHit:
    """One centre in a result, with its distance (metres on the WGS84 spheroid) when the search has a point.

    Its fields are the centre's public search fields (``geo.search.fields``) and the search's own two;
    tests/api/test_facility_fields.py keeps them equal."""

    id: int
    code: str
    name: str
    facility_type: str
    facility_type_ko: str | None
    status: str
    status_ko: str | None
    address: str | None
    phone: str | None
    district_code: str | None
    sigungu_name: str | None
    capacity: int | None
    enrolled: int | None
    free_by_age: dict[str, int] | None
    services: list[str]
    services_ko: list[str]
    has_bus: bool | None
    cctv_count: int | None
    staff_languages: list[str]
    evaluation_grade: str | None
    evaluation_date: str | None
    geocode_quality: str
    location_approximate: bool
    data_date: date | None
    vacancy_as_of: str | None
    lon: float
    lat: float
    distance_m: float | None = None
    catchment_radius_m: float | None = None

    @classmethod
    def from_feature(cls, feature: dict[str, Any]) -> FacilityHit:
        """A hit from the GeoJSON Feature built by the search SQL (``properties`` + Point in lon, lat)."""
        props = dict(feature["properties"])
        lon, lat = feature["geometry"]["coordinates"]
        data_date = props.pop("data_date", None)
        return cls(id=int(feature["id"]), lon=float(lon), lat=float(lat),
                   data_date=date.fromisoformat(data_date) if data_date else None,
                   **{k: v for k, v in props.items() if k in _PROPERTY_FIELDS})


_PROPERTY_FIELDS = frozenset(FacilityHit.__dataclass_fields__) - {"id", "lon", "lat", "data_date"}


@dataclass(frozen=True)
class SearchPage:
    """One page of results in order.

    ``features_json`` is the page as a JSON array text, GeoJSON Features (``shape="feature"``) or compact items
    (``shape="item"``), exactly as the database wrote it. ``number_matched`` is the number of all matches when
    it is known: always when the page reaches the end, otherwise only when an exact count was asked for.
    """

    features_json: str
    number_returned: int
    has_more: bool
    number_matched: int | None
    limit: int
    offset: int
    shape: str = "feature"
    # What was searched (point, radius, area, catchment radii...), echoed by the API.
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[dict[str, Any]]:
        """The page decoded (GeoJSON Features or compact items)."""
        import json

        return list(json.loads(self.features_json))

    @property
    def items(self) -> list[FacilityHit]:
        """The page as ``FacilityHit`` objects (GeoJSON feature pages only)."""
        if self.shape != "feature":
            raise ValueError("items needs a page of GeoJSON features (shape='feature')")
        return [FacilityHit.from_feature(f) for f in self.features]

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, ``None`` on the last page."""
        return self.offset + self.number_returned if self.has_more else None

    @property
    def previous_offset(self) -> int | None:
        """Offset of the previous page, ``None`` on the first page; never past the last match."""
        if self.offset <= 0:
            return None
        previous = max(0, self.offset - self.limit)
        if self.number_returned == 0 and self.number_matched is not None:
            # Past the end: step back to the last page that has results.
            last_start = max(0, ((self.number_matched - 1) // self.limit) * self.limit)
            previous = min(previous, last_start)
        return previous
