"""Facility search on PostGIS: radius, k-nearest, administrative area and catchment, with combinable filters.

Every function takes a connection (or session) first and keyword-only options, so the same code serves the
API, the CLI and notebooks. Input is validated here and rejected with ``geo.errors.InvalidQuery``; names that
do not exist raise ``geo.errors.NotFound``.

Distances are metres on the WGS84 spheroid (``geography``); coordinates are EPSG:4326 (lon, lat). The
spatial predicates are written against ``CAST(f.geom_4326 AS geography)`` so that they use the expression
index ``ix_facilities_geog``; point-in-polygon on ``geom_4326`` uses ``ix_facilities_geom_4326``.

SQL is composed only from the constant fragments in this module (``_compose``); every value is bound.

Examples
--------
>>> from geo.db import make_engine
>>> from geo.search import FacilityFilters, radius_search
>>> with make_engine().connect() as conn:  # doctest: +SKIP
...     page = radius_search(conn, lat=37.5563, lon=126.9220, radius_m=1000,
...                          filters=FacilityFilters.parse(services=["24h"], age=2))
...     [(hit.name, round(hit.distance_m)) for hit in page.items]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, TextClause, text
from sqlalchemy.orm import Session

from geo.domain import (
    AGES,
    KOREA_BBOX_4326,
    OPERATING_STATUSES,
    FacilityStatus,
    FacilityType,
    Service,
    UnknownServiceLabel,
    class_age,
    in_korea,
    parse_facility_type,
    parse_service_name,
    parse_status,
    services_open_at,
)
from geo.errors import InvalidQuery, NotFound
from geo.settings import Settings, get_settings

Conn: TypeAlias = Connection | Session
ServiceMatch = Literal["all", "any"]

KOREA_TZ = ZoneInfo("Asia/Seoul")
MAX_NAME_LENGTH = 100
# Added to the k-th candidate's distance so that ST_DWithin's own spheroid computation cannot drop it.
_KNN_BOUND_SLACK_M = 0.01

# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------


def validate_point(*, lat: float, lon: float) -> None:
    """Reject coordinates that are not finite, out of range, swapped or outside Korea (EPSG:4326 degrees).

    Raises
    ------
    InvalidQuery
        With ``param`` naming the offending parameter; a lat/lon pair that would lie in Korea once swapped
        (``lat≈127, lon≈37``) says so.
    """
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise InvalidQuery(f"lat and lon must be finite numbers (got lat={lat}, lon={lon})", param="lat,lon")
    if in_korea(lat=lon, lon=lat):
        raise InvalidQuery(
            f"lat={lat}, lon={lon} is not in Korea but lat={lon}, lon={lat} is: lat and lon swapped?",
            param="lat,lon",
        )
    if not -90.0 <= lat <= 90.0:
        raise InvalidQuery(f"lat must be between -90 and 90 degrees (got {lat})", param="lat")
    if not -180.0 <= lon <= 180.0:
        raise InvalidQuery(f"lon must be between -180 and 180 degrees (got {lon})", param="lon")
    if not in_korea(lat=lat, lon=lon):
        lon_min, lat_min, lon_max, lat_max = KOREA_BBOX_4326
        raise InvalidQuery(
            f"lat={lat}, lon={lon} is outside Korea (lon {lon_min}..{lon_max}, lat {lat_min}..{lat_max})",
            param="lat,lon",
        )


def validate_distance_m(value_m: float, *, param: str, settings: Settings | None = None) -> float:
    """A search distance in metres: finite, > 0 and at most ``Settings.max_radius_m``."""
    max_m = (settings or get_settings()).max_radius_m
    if not math.isfinite(value_m) or value_m <= 0:
        raise InvalidQuery(f"{param} must be a positive number of metres (got {value_m})", param=param)
    if value_m > max_m:
        raise InvalidQuery(f"{param} must be at most {max_m:g} m (got {value_m:g})", param=param)
    return float(value_m)


def validate_page(*, limit: int, offset: int, settings: Settings | None = None, param: str = "limit") -> None:
    """``1 <= limit <= Settings.max_page_limit`` and ``offset >= 0``."""
    max_limit = (settings or get_settings()).max_page_limit
    if limit < 1 or limit > max_limit:
        raise InvalidQuery(f"{param} must be between 1 and {max_limit} (got {limit})", param=param)
    if offset < 0:
        raise InvalidQuery(f"offset must be >= 0 (got {offset})", param="offset")


def child_age(*, age: int | None = None, birth_date: date | None = None, on: date | None = None) -> int | None:
    """The age class (만 N세반, 0..5) to search for, given directly or from a birth date on ``on`` (default:
    today in Korea); ``None`` when neither is given.

    Raises
    ------
    InvalidQuery
        Both given, age outside 0..5, birth date in the future, or a child too old for 어린이집 classes.
    """
    if age is not None and birth_date is not None:
        raise InvalidQuery("give either age or birth_date, not both", param="age,birth_date")
    if age is not None:
        if age not in AGES:
            raise InvalidQuery(f"age must be an age class between {AGES[0]} and {AGES[-1]} (got {age})",
                               param="age")
        return age
    if birth_date is None:
        return None
    today = on or datetime.now(KOREA_TZ).date()
    if birth_date > today:
        raise InvalidQuery(f"birth_date {birth_date.isoformat()} is in the future (today is {today.isoformat()})",
                           param="birth_date")
    derived = class_age(birth_date, today)
    if derived not in AGES:
        raise InvalidQuery(f"a child born on {birth_date.isoformat()} is in the 만{derived}세반 on "
                           f"{today.isoformat()}; 어린이집 classes are 만0-5세", param="birth_date")
    return derived


def _local_time(moment: datetime) -> datetime:
    """Korean wall-clock time of ``moment`` (naive datetimes are taken as Korean time already)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(KOREA_TZ).replace(tzinfo=None)


def _split_values(values: Iterable[str] | str | None) -> list[str]:
    """Repeated and comma-separated values (``["24h,holiday", "hourly"]``) as one flat list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_services(values: Iterable[str] | str | None) -> tuple[Service, ...]:
    """Services from enum values (``24h``) or Korean labels (``휴일보육``); duplicates removed, order kept."""
    found: list[Service] = []
    for value in _split_values(values):
        try:
            service = parse_service_name(value)
        except UnknownServiceLabel:
            known = ", ".join(s.value for s in Service)
            raise InvalidQuery(f"unknown service {value!r}; use one of {known} or its Korean label",
                               param="service", value=value) from None
        if service not in found:
            found.append(service)
    return tuple(found)


def parse_types(values: Iterable[str] | str | None) -> tuple[FacilityType, ...]:
    """Facility types from enum values (``home``) or Korean labels (``가정``)."""
    found: list[FacilityType] = []
    for value in _split_values(values):
        ftype = parse_facility_type(value)
        if ftype is None:
            known = ", ".join(t.value for t in FacilityType)
            raise InvalidQuery(f"unknown facility type {value!r}; use one of {known} or its Korean label",
                               param="type", value=value)
        if ftype not in found:
            found.append(ftype)
    return tuple(found)


def parse_statuses(values: Iterable[str] | str | None) -> tuple[FacilityStatus, ...] | None:
    """Statuses from values or Korean labels; none given means operating (active + reopened), ``all``
    (alone) means no status filter (``None``), ``operating`` expands to active + reopened."""
    raw = _split_values(values)
    if not raw:
        return OPERATING_STATUSES
    if [v.lower() for v in raw] == ["all"]:
        return None
    found: list[FacilityStatus] = []
    for value in raw:
        expanded = OPERATING_STATUSES if value.lower() == "operating" else (parse_status(value),)
        for status in expanded:
            if status is None:
                known = ", ".join(s.value for s in FacilityStatus)
                raise InvalidQuery(f"unknown status {value!r}; use one of {known}, operating or all",
                                   param="status", value=value)
            if status not in found:
                found.append(status)
    return tuple(found)


# ---------------------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------------------


def _like_pattern(fragment: str) -> str:
    """``%fragment%`` for ILIKE with ``%``, ``_`` and ``\\`` escaped (backslash is LIKE's default escape)."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class FacilityFilters:
    """Attribute filters shared by every search; all given filters must hold (AND).

    Attributes
    ----------
    services
        Services a centre must offer. ``services_match="all"`` (default) requires every listed service
        (``services @> :arr``), ``"any"`` at least one (``services && :arr``); both use the GIN index
        ``ix_facilities_services``.
    facility_types
        Any of these types (empty: every type).
    statuses
        Any of these statuses; default operating (active + reopened); ``None`` disables the filter.
    age, min_free
        Age class 0..5 with at least ``min_free`` estimated free places (``free_by_age``). ``min_free=0``
        keeps the age (it still shortens catchment radii for infants) without requiring vacancies.
    open_at
        Korean local time (aware datetimes are converted) at which the centre must be open; opening hours
        follow from services (``geo.domain.services_open_at``).
    has_bus, has_cctv
        ``True``: has a school bus / at least one CCTV camera; ``False``: not known to have one.
    name
        Fragment of the centre name, case-insensitive (ILIKE on a bound, escaped pattern; trigram index).
    """

    services: tuple[Service, ...] = ()
    services_match: ServiceMatch = "all"
    facility_types: tuple[FacilityType, ...] = ()
    statuses: tuple[FacilityStatus, ...] | None = OPERATING_STATUSES
    age: int | None = None
    min_free: int = 1
    open_at: datetime | None = None
    has_bus: bool | None = None
    has_cctv: bool | None = None
    name: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        services: Iterable[str] | str | None = None,
        services_match: str = "all",
        types: Iterable[str] | str | None = None,
        status: Iterable[str] | str | None = None,
        age: int | None = None,
        birth_date: date | None = None,
        min_free: int = 1,
        open_at: datetime | None = None,
        has_bus: bool | None = None,
        has_cctv: bool | None = None,
        name: str | None = None,
        today: date | None = None,
    ) -> FacilityFilters:
        """Filters from raw API/CLI values (enum values or Korean labels, comma lists allowed).

        ``today`` (default: today in Korea) places a ``birth_date`` in its age class.

        Raises
        ------
        InvalidQuery
            Unknown service/type/status, bad ``services_match``, age outside 0..5, birth date in the future,
            ``min_free < 0``, or a name longer than 100 characters.
        """
        if services_match not in ("all", "any"):
            raise InvalidQuery(f"service_match must be 'all' or 'any' (got {services_match!r})",
                               param="service_match")
        if min_free < 0:
            raise InvalidQuery(f"min_free must be >= 0 (got {min_free})", param="min_free")
        cleaned_name = (name or "").strip() or None
        if cleaned_name is not None and len(cleaned_name) > MAX_NAME_LENGTH:
            raise InvalidQuery(f"name must be at most {MAX_NAME_LENGTH} characters", param="name")
        return cls(
            services=parse_services(services),
            services_match="any" if services_match == "any" else "all",
            facility_types=parse_types(types),
            statuses=parse_statuses(status),
            age=child_age(age=age, birth_date=birth_date, on=today),
            min_free=min_free,
            open_at=open_at,
            has_bus=has_bus,
            has_cctv=has_cctv,
            name=cleaned_name,
        )

    def to_sql(self) -> tuple[str, dict[str, Any]]:
        """``(where_clause, params)`` on the table alias ``f``; the clause is ``TRUE`` without filters.

        The clause is built from constant fragments; every value is a bound parameter prefixed ``flt_``.
        """
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.services:
            op = "@>" if self.services_match == "all" else "&&"
            clauses.append(f"f.services {op} CAST(:flt_services AS text[])")
            params["flt_services"] = [s.value for s in self.services]
        if self.facility_types:
            clauses.append("f.facility_type = ANY(CAST(:flt_types AS text[]))")
            params["flt_types"] = [t.value for t in self.facility_types]
        if self.statuses is not None:
            clauses.append("f.status = ANY(CAST(:flt_statuses AS text[]))")
            params["flt_statuses"] = [s.value for s in self.statuses]
        if self.age is not None and self.min_free > 0:
            clauses.append("CAST(f.free_by_age ->> CAST(:flt_age AS text) AS integer) >= :flt_min_free")
            params["flt_age"] = str(self.age)
            params["flt_min_free"] = self.min_free
        if self.open_at is not None:
            needed = services_open_at(_local_time(self.open_at))
            if needed is not None:
                if needed:
                    clauses.append("f.services && CAST(:flt_open_services AS text[])")
                    params["flt_open_services"] = sorted(s.value for s in needed)
                else:
                    clauses.append("FALSE")
        if self.has_bus is not None:
            clauses.append("f.has_bus IS TRUE" if self.has_bus else "f.has_bus IS NOT TRUE")
        if self.has_cctv is not None:
            clauses.append("f.cctv_count > 0" if self.has_cctv else "COALESCE(f.cctv_count, 0) = 0")
        if self.name:
            clauses.append("f.name ILIKE :flt_name")
            params["flt_name"] = _like_pattern(self.name)
        return (" AND ".join(clauses) or "TRUE"), params


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FacilityHit:
    """One centre in a result, with its distance (metres on the WGS84 spheroid) when the search has a point."""

    id: int
    code: str
    name: str
    facility_type: str
    status: str
    address: str | None
    phone: str | None
    district_code: str | None
    sigungu_name: str | None
    capacity: int | None
    enrolled: int | None
    free_by_age: dict[str, int] | None
    services: list[str]
    has_bus: bool | None
    cctv_count: int | None
    geocode_quality: str
    data_date: date | None
    lon: float
    lat: float
    distance_m: float | None = None
    catchment_radius_m: float | None = None


@dataclass(frozen=True)
class SearchPage:
    """One page of results in order, with the total number of matches (``number_matched``)."""

    items: list[FacilityHit]
    number_matched: int
    limit: int
    offset: int
    # What was searched (point, radius, area, catchment radii...), echoed by the API.
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def number_returned(self) -> int:
        """Items on this page."""
        return len(self.items)

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, ``None`` on the last page."""
        following = self.offset + len(self.items)
        return following if self.items and following < self.number_matched else None

    @property
    def previous_offset(self) -> int | None:
        """Offset of the previous page, ``None`` on the first page."""
        return max(0, self.offset - self.limit) if self.offset > 0 else None


# ---------------------------------------------------------------------------------------------------------
# SQL fragments (constants only)
# ---------------------------------------------------------------------------------------------------------

# Shared by every search so that all of them return the same columns.
FACILITY_COLUMNS = """
    f.id, f.code, f.name, f.facility_type, f.status, f.address, f.phone, f.district_code, f.sigungu_name,
    f.capacity, f.enrolled, f.free_by_age, f.services, f.has_bus, f.cctv_count, f.geocode_quality,
    f.data_date, ST_X(f.geom_4326) AS lon, ST_Y(f.geom_4326) AS lat"""
# Written exactly like the index expression of ix_facilities_geog so that the planner can use it.
FACILITY_GEOG = "CAST(f.geom_4326 AS geography)"
POINT_GEOG = "CAST(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geography)"
DISTANCE_M = f"ST_Distance({FACILITY_GEOG}, {POINT_GEOG})"

RADIUS_SQL = """
SELECT {columns}, {distance} AS distance_m, count(*) OVER () AS number_matched
FROM facilities f
WHERE ST_DWithin({geog}, {point}, :radius_m) AND {filters}
ORDER BY distance_m, f.id
LIMIT :limit OFFSET :offset"""

# KNN on the index orders candidates by <-> (sphere); the exact k nearest on the spheroid all lie within the
# largest spheroid distance among the first n candidates, so the second step re-selects with ST_DWithin and
# orders by exact distance.
NEAREST_SQL = """
WITH knn AS MATERIALIZED (
    SELECT {distance} AS d
    FROM facilities f
    WHERE {filters} {within}
    ORDER BY {geog} <-> {point}
    LIMIT :knn_n
)
SELECT {columns}, {distance} AS distance_m
FROM facilities f
WHERE ST_DWithin({geog}, {point}, (SELECT max(d) FROM knn) + :slack_m) AND {filters}
ORDER BY distance_m, f.id
LIMIT :limit OFFSET :offset"""

COUNT_SQL = """
SELECT count(*) FROM facilities f
WHERE {filters} {within}"""

NEAREST_WITHIN = "AND ST_DWithin({geog}, {point}, :max_distance_m)"

AREA_SQL = """
SELECT {columns}, {distance} AS distance_m, count(*) OVER () AS number_matched
FROM facilities f
WHERE ST_Intersects(f.geom_4326, (SELECT a.geom_4326 FROM {area_table} a WHERE {area_match}))
  AND {filters}
ORDER BY {order}
LIMIT :limit OFFSET :offset"""

CATCHMENT_SQL = """
SELECT {columns}, {distance} AS distance_m, c.radius_m AS catchment_radius_m,
       count(*) OVER () AS number_matched
FROM facilities f
JOIN (VALUES {radii}) AS c (facility_type, radius_m) ON c.facility_type = f.facility_type
WHERE ST_DWithin({geog}, {point}, :max_catchment_m)
  AND ST_DWithin({geog}, {point}, c.radius_m)
  AND {filters}
ORDER BY distance_m, f.id
LIMIT :limit OFFSET :offset"""

# Administrative areas: table and key condition per kind, identifiers from here only.
AREA_TABLES: dict[str, tuple[str, str]] = {
    "district": ("districts", "a.code = :area_key"),
    "admin_dong": ("admin_dongs", "a.id = CAST(:area_key AS integer)"),
}


def _fill(template: str, **fragments: str) -> str:
    """A constant SQL template filled with constant SQL fragments (never request data)."""
    return template.format(**fragments)


def _compose(template: str, **fragments: str) -> TextClause:
    """``text()`` of ``_fill(template, **fragments)``."""
    return text(_fill(template, **fragments))


_HIT_FIELDS = tuple(FacilityHit.__dataclass_fields__)


def _hit(row: Any) -> FacilityHit:
    mapping = row._mapping
    values = {name: mapping[name] for name in _HIT_FIELDS if name in mapping}
    values["services"] = list(values.get("services") or [])
    for key in ("distance_m", "catchment_radius_m"):
        if values.get(key) is not None:
            values[key] = float(values[key])
    return FacilityHit(**values)


def _page(rows: Sequence[Any], *, limit: int, offset: int, query: dict[str, Any], count: int) -> SearchPage:
    return SearchPage(items=[_hit(r) for r in rows], number_matched=count, limit=limit, offset=offset,
                      query=query)


def _run_counted(conn: Conn, sql: TextClause, params: dict[str, Any], *, limit: int, offset: int,
                 query: dict[str, Any]) -> SearchPage:
    """Run a query with a ``number_matched`` window count; a page past the end re-asks for the count."""
    rows = conn.execute(sql, params).all()
    if rows:
        count = int(rows[0]._mapping["number_matched"])
    elif offset > 0:
        first = conn.execute(sql, params | {"limit": 1, "offset": 0}).first()
        count = int(first._mapping["number_matched"]) if first is not None else 0
    else:
        count = 0
    return _page(rows, limit=limit, offset=offset, query=query, count=count)


def _check(lat: float, lon: float, limit: int, offset: int, settings: Settings) -> None:
    validate_point(lat=lat, lon=lon)
    validate_page(limit=limit, offset=offset, settings=settings)


# ---------------------------------------------------------------------------------------------------------
# Searches
# ---------------------------------------------------------------------------------------------------------


def radius_search(
    conn: Conn,
    *,
    lat: float,
    lon: float,
    radius_m: float,
    filters: FacilityFilters | None = None,
    limit: int = 50,
    offset: int = 0,
    settings: Settings | None = None,
) -> SearchPage:
    """Centres within ``radius_m`` metres (spheroid) of (lat, lon) EPSG:4326, nearest first.

    ``ST_DWithin`` on geography with the ``ix_facilities_geog`` index; ties ordered by id so that pages
    are stable. ``number_matched`` counts every match (window count).
    """
    settings = settings or get_settings()
    _check(lat, lon, limit, offset, settings)
    radius_m = validate_distance_m(radius_m, param="radius_m", settings=settings)
    sql, params = radius_query(lat=lat, lon=lon, radius_m=radius_m, filters=filters, limit=limit, offset=offset)
    return _run_counted(conn, sql, params, limit=limit, offset=offset,
                        query={"lat": lat, "lon": lon, "radius_m": radius_m})


def radius_query(*, lat: float, lon: float, radius_m: float, filters: FacilityFilters | None = None,
                 limit: int = 50, offset: int = 0) -> tuple[TextClause, dict[str, Any]]:
    """The SQL and bound parameters ``radius_search`` runs (unvalidated; for EXPLAIN and benchmarks)."""
    where, params = (filters or FacilityFilters()).to_sql()
    sql = _compose(RADIUS_SQL, columns=FACILITY_COLUMNS, distance=DISTANCE_M, geog=FACILITY_GEOG,
                   point=POINT_GEOG, filters=where)
    return sql, params | {"lat": lat, "lon": lon, "radius_m": radius_m, "limit": limit, "offset": offset}


def nearest_search(
    conn: Conn,
    *,
    lat: float,
    lon: float,
    k: int = 10,
    offset: int = 0,
    max_distance_m: float | None = None,
    filters: FacilityFilters | None = None,
    settings: Settings | None = None,
) -> SearchPage:
    """The ``k`` centres nearest to (lat, lon) EPSG:4326 after skipping ``offset``, optionally only within
    ``max_distance_m`` metres; ``number_matched`` is every centre passing the filters (and the distance).

    KNN ``<->`` on the geography index finds candidates; the result is ordered by exact spheroid distance.
    """
    settings = settings or get_settings()
    validate_point(lat=lat, lon=lon)
    validate_page(limit=k, offset=offset, settings=settings, param="k")
    if max_distance_m is not None:
        max_distance_m = validate_distance_m(max_distance_m, param="max_distance_m", settings=settings)
    sql, count_sql, params = nearest_query(lat=lat, lon=lon, k=k, offset=offset, max_distance_m=max_distance_m,
                                           filters=filters)
    rows = conn.execute(sql, params).all()
    count = int(conn.execute(count_sql, params).scalar_one())
    query: dict[str, Any] = {"lat": lat, "lon": lon, "k": k}
    if max_distance_m is not None:
        query["max_distance_m"] = max_distance_m
    return _page(rows, limit=k, offset=offset, query=query, count=count)


def nearest_query(*, lat: float, lon: float, k: int = 10, offset: int = 0, max_distance_m: float | None = None,
                  filters: FacilityFilters | None = None) -> tuple[TextClause, TextClause, dict[str, Any]]:
    """The page SQL, the count SQL and their bound parameters that ``nearest_search`` runs (unvalidated)."""
    where, params = (filters or FacilityFilters()).to_sql()
    within = _fill(NEAREST_WITHIN, geog=FACILITY_GEOG, point=POINT_GEOG) if max_distance_m is not None else ""
    sql = _compose(NEAREST_SQL, columns=FACILITY_COLUMNS, distance=DISTANCE_M, geog=FACILITY_GEOG,
                   point=POINT_GEOG, filters=where, within=within)
    count_sql = _compose(COUNT_SQL, filters=where, within=within)
    params |= {"lat": lat, "lon": lon, "knn_n": offset + k, "slack_m": _KNN_BOUND_SLACK_M,
               "limit": k, "offset": offset, "max_distance_m": max_distance_m}
    return sql, count_sql, params


@dataclass(frozen=True)
class Area:
    """A resolved administrative area: a 구 (``districts``) or a 행정동 (``admin_dongs``)."""

    kind: Literal["district", "admin_dong"]
    key: str  # districts.code, or admin_dongs.id as text
    name: str
    district_code: str
    district_name: str
    mois_code: str | None = None
    kostat_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description (without the internal key of dongs)."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "district_code": self.district_code,
                               "district_name": self.district_name}
        if self.kind == "admin_dong":
            out |= {"mois_code": self.mois_code, "kostat_code": self.kostat_code}
        return out


_DISTRICT_LOOKUP = text("""
    SELECT code, name FROM districts WHERE code = :value OR name = :value ORDER BY code""")
_DONG_LOOKUP = text("""
    SELECT a.id, a.name, a.mois_code, a.kostat_code, a.district_code, d.name AS district_name
    FROM admin_dongs a JOIN districts d ON d.code = a.district_code
    WHERE (a.mois_code = :value OR a.kostat_code = :value OR a.name = :value)
      AND (CAST(:district_code AS text) IS NULL OR a.district_code = :district_code)
    ORDER BY a.district_code, a.name, a.id""")


def resolve_area(conn: Conn, *, district: str | None = None, dong: str | None = None) -> Area:
    """Find a 구 (``districts.code`` or ``name``) or a 행정동 (``admin_dongs.mois_code``, ``kostat_code`` or
    ``name``, narrowed to ``district`` when both are given).

    Raises
    ------
    InvalidQuery
        Neither given, or a name that matches several areas (``candidates`` lists them).
    NotFound
        Nothing of that code or name.
    """
    district = (district or "").strip() or None
    dong = (dong or "").strip() or None
    if district is None and dong is None:
        raise InvalidQuery("give a district (구 code or name) or a dong (행정동 code or name)", param="district,dong")
    district_row = None
    if district is not None:
        rows = conn.execute(_DISTRICT_LOOKUP, {"value": district}).all()
        if not rows:
            raise NotFound(f"no district (구) with code or name {district!r}", param="district", value=district)
        if len(rows) > 1:
            raise InvalidQuery(f"district {district!r} is ambiguous; give its code", param="district",
                               candidates=[{"code": r.code, "name": r.name} for r in rows])
        district_row = rows[0]
        if dong is None:
            return Area(kind="district", key=district_row.code, name=district_row.name,
                        district_code=district_row.code, district_name=district_row.name)
    rows = conn.execute(_DONG_LOOKUP, {"value": dong,
                                       "district_code": district_row.code if district_row else None}).all()
    where = f" in {district_row.name}" if district_row else ""
    if not rows:
        # A 법정동 name (역삼동) is not a 행정동: list the 행정동 it lies in. Imported here: geo.places imports us.
        from geo.places import admin_dongs_of_legal_dong

        candidates = admin_dongs_of_legal_dong(conn, name=dong or "",
                                               district_code=district_row.code if district_row else None)
        if candidates:
            names = ", ".join(sorted({f"{c['district_name']} {c['name']}" for c in candidates}))
            raise NotFound(f"{dong!r} is a 법정동, not a 행정동{where}; it lies in the 행정동 {names}",
                           param="dong", value=dong, candidates=candidates)
        raise NotFound(f"no 행정동 with code or name {dong!r}{where}", param="dong", value=dong)
    if len(rows) > 1:
        raise InvalidQuery(
            f"dong {dong!r} is ambiguous; give its district or code", param="dong",
            candidates=[{"name": r.name, "district_name": r.district_name, "district_code": r.district_code,
                         "mois_code": r.mois_code, "kostat_code": r.kostat_code} for r in rows],
        )
    row = rows[0]
    return Area(kind="admin_dong", key=str(row.id), name=row.name, district_code=row.district_code,
                district_name=row.district_name, mois_code=row.mois_code, kostat_code=row.kostat_code)


def area_search(
    conn: Conn,
    *,
    district: str | None = None,
    dong: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    filters: FacilityFilters | None = None,
    limit: int = 50,
    offset: int = 0,
    settings: Settings | None = None,
) -> SearchPage:
    """Centres located in a 구 or 행정동 (point-in-polygon on ``geom_4326``), see ``resolve_area``.

    Ordered by distance from (lat, lon) when a point is given (``distance_m`` filled), else by name.
    """
    settings = settings or get_settings()
    filters = filters or FacilityFilters()
    validate_page(limit=limit, offset=offset, settings=settings)
    has_point = lat is not None or lon is not None
    if has_point:
        if lat is None or lon is None:
            raise InvalidQuery("give both lat and lon (or neither)", param="lat,lon")
        validate_point(lat=lat, lon=lon)
    area = resolve_area(conn, district=district, dong=dong)
    table, match = AREA_TABLES[area.kind]
    where, params = filters.to_sql()
    sql = _compose(AREA_SQL, columns=FACILITY_COLUMNS, distance=DISTANCE_M if has_point else "NULL",
                   area_table=table, area_match=match, filters=where,
                   order="distance_m, f.id" if has_point else "f.name, f.id")
    params |= {"area_key": area.key, "limit": limit, "offset": offset, "lat": lat, "lon": lon}
    query: dict[str, Any] = {"area": area.as_dict()}
    if has_point:
        query |= {"lat": lat, "lon": lon}
    return _run_counted(conn, sql, params, limit=limit, offset=offset, query=query)


def catchment_radii_m(*, age: int | None = None, settings: Settings | None = None) -> dict[str, float]:
    """Catchment radius in metres per facility type value for a child of ``age`` (0-2: times
    ``Settings.catchment_infant_factor``); types without a configured radius have no catchment.

    Keys of ``Settings.catchment_radius_m`` may be type values or Korean labels; an unknown key raises
    ``ValueError``.
    """
    settings = settings or get_settings()
    factor = settings.catchment_infant_factor if age is not None and age <= 2 else 1.0
    radii: dict[str, float] = {}
    for key, radius_m in settings.catchment_radius_m.items():
        ftype = parse_facility_type(key)
        if ftype is None:
            # A configuration error, not a bad query: let it surface as a server error.
            raise ValueError(f"Settings.catchment_radius_m has an unknown facility type {key!r}")
        radii[ftype.value] = float(radius_m) * factor
    return radii


def catchment_search(
    conn: Conn,
    *,
    lat: float,
    lon: float,
    filters: FacilityFilters | None = None,
    radii_m: Mapping[str, float] | None = None,
    limit: int = 50,
    offset: int = 0,
    settings: Settings | None = None,
) -> SearchPage:
    """Centres whose catchment contains the home at (lat, lon) EPSG:4326: distance (spheroid, metres) at most
    the centre type's catchment radius (``catchment_radii_m`` for ``filters.age``, unless ``radii_m`` is
    given). Nearest first; ``catchment_radius_m`` is filled in each hit.
    """
    settings = settings or get_settings()
    filters = filters or FacilityFilters()
    _check(lat, lon, limit, offset, settings)
    radii = dict(radii_m) if radii_m is not None else catchment_radii_m(age=filters.age, settings=settings)
    radii = {t: r for t, r in radii.items() if r > 0}
    query: dict[str, Any] = {"lat": lat, "lon": lon, "age": filters.age, "catchment_radius_m": radii}
    if not radii:
        return SearchPage(items=[], number_matched=0, limit=limit, offset=offset, query=query)
    where, params = filters.to_sql()
    values = ", ".join(f"(:ct_{i}, CAST(:cr_{i} AS double precision))" for i in range(len(radii)))
    for i, (ftype, radius_m) in enumerate(sorted(radii.items())):
        params[f"ct_{i}"] = ftype
        params[f"cr_{i}"] = radius_m
    sql = _compose(CATCHMENT_SQL, columns=FACILITY_COLUMNS, distance=DISTANCE_M, geog=FACILITY_GEOG,
                   point=POINT_GEOG, radii=values, filters=where)
    params |= {"lat": lat, "lon": lon, "max_catchment_m": max(radii.values()), "limit": limit,
               "offset": offset}
    return _run_counted(conn, sql, params, limit=limit, offset=offset, query=query)
