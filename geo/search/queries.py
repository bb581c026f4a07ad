"""Facility searches: radius, k-nearest, administrative area, catchment and "inside a geometry".

Each search validates its input (``geo.errors.InvalidQuery``; unknown names ``NotFound``) and builds a
``SearchStatement``: the SQL of ``geo.search.sql`` with its bound parameters. ``run`` executes it on a sync
connection (SQLAlchemy ``Connection``/``Session`` or a psycopg connection, inside the caller's transaction) and
``run_async`` on a psycopg ``AsyncConnection``; both return a ``SearchPage`` whose JSON the database wrote.

Examples
--------
>>> from geo.db import make_engine
>>> from geo.search import FacilityFilters, radius_search
>>> with make_engine(settings=settings).connect() as conn:  # doctest: +SKIP
...     page = radius_search(conn, lat=37.5563, lon=126.9220, radius_m=1000, settings=settings,
...                          filters=FacilityFilters.parse(services=["twenty_four_hour"], age=2))
...     [(hit.name, round(hit.distance_m)) for hit in page.items]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import AsyncConnection, sql

from geo.db import Conn, driver_connection
from geo.domain import parse_facility_type
from geo.errors import InvalidQuery
from geo.search import sql as q
from geo.search.filters import FacilityFilters
from geo.search.places import Area, AreaRequest, resolve_area, resolve_area_async
from geo.search.results import SearchPage
from geo.settings import Settings
from geo.validation import validate_distance_m, validate_page, validate_point

CountMode = Literal["auto", "exact"]


@dataclass(frozen=True)
class SearchStatement:
    """A validated search: the page SQL, the optional exact-count SQL, their parameters and the echo."""

    page_sql: sql.SQL | sql.Composed
    count_sql: sql.SQL | sql.Composed | None
    params: dict[str, Any]
    limit: int
    offset: int
    shape: q.Shape = "feature"
    query: dict[str, Any] = field(default_factory=dict)

    def needs_count(self, fetched: int, count: CountMode) -> bool:
        """Whether ``number_matched`` must be counted: asked for and not known from the page itself."""
        if self.count_sql is None:
            return False
        reached_end = fetched <= self.limit
        known = reached_end and (fetched > 0 or self.offset == 0)
        return not known and (count == "exact" or (fetched == 0 and self.offset > 0))

    def page(self, row: tuple[str, int], number_matched: int | None) -> SearchPage:
        """The ``SearchPage`` from the statement's one row and the count (when one was run)."""
        features_json, fetched = row
        returned = min(int(fetched), self.limit)
        has_more = int(fetched) > self.limit
        if number_matched is None and not has_more and (returned > 0 or self.offset == 0):
            number_matched = self.offset + returned
        return SearchPage(features_json=features_json, number_returned=returned, has_more=has_more,
                          number_matched=number_matched, limit=self.limit, offset=self.offset, shape=self.shape,
                          query=self.query)


# The SQL of a search depends only on its kind, output shape and which filters are given (every value is bound),
# so it is composed and rendered once per such key, not on every request: composing and rendering were ~0.1 ms
# of a search's time in the API (benchmarks/README.md, "Issue 24: the search fast path"). Bounded: the keys are
# few (shapes x filter combinations in use), and the cache starts again if ever it fills.
_RENDERED: dict[tuple[Any, ...], tuple[sql.SQL, sql.SQL | None]] = {}
MAX_RENDERED = 4096


def rendered(key: tuple[Any, ...], where: sql.Composable,
             build: Callable[[], tuple[sql.Composable, sql.Composable | None]]) -> tuple[sql.SQL, sql.SQL | None]:
    """(page SQL, count SQL) of the statement ``build`` composes, rendered to plain SQL once per ``key`` and
    filter condition ``where`` (which holds only SQL text: its values are parameters)."""
    full_key = (*key, where.as_string())
    found = _RENDERED.get(full_key)
    if found is None:
        page, count = build()
        found = (sql.SQL(page.as_string()), None if count is None else sql.SQL(count.as_string()))
        if len(_RENDERED) >= MAX_RENDERED:
            _RENDERED.clear()
        _RENDERED[full_key] = found
    return found


def run(conn: Conn, statement: SearchStatement, *, count: CountMode = "auto") -> SearchPage:
    """Execute ``statement`` on a sync connection, inside the caller's transaction."""
    with driver_connection(conn).cursor() as cur:
        cur.execute(statement.page_sql, statement.params)
        row = cur.fetchone()
        assert row is not None
        matched = None
        if statement.needs_count(row[1], count):
            assert statement.count_sql is not None
            cur.execute(statement.count_sql, statement.params)
            counted = cur.fetchone()
            matched = int(counted[0]) if counted else 0
    return statement.page(row, matched)


async def run_async(conn: AsyncConnection[Any], statement: SearchStatement, *,
                    count: CountMode = "auto") -> SearchPage:
    """Execute ``statement`` on a psycopg async connection."""
    async with conn.cursor() as cur:
        await cur.execute(statement.page_sql, statement.params)
        row = await cur.fetchone()
        assert row is not None
        matched = None
        if statement.needs_count(row[1], count):
            assert statement.count_sql is not None
            await cur.execute(statement.count_sql, statement.params)
            counted = await cur.fetchone()
            matched = int(counted[0]) if counted else 0
    return statement.page(row, matched)


def _base_params(*, lat: float | None, lon: float | None, limit: int, offset: int) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "limit": limit, "offset": offset, "probe": limit + 1, "labels": q.LABELS_JSON,
            "slack_m": q.KNN_BOUND_SLACK_M}


def radius_statement(*, lat: float, lon: float, radius_m: float, settings: Settings,
                     filters: FacilityFilters | None = None, limit: int = 50, offset: int = 0,
                     shape: q.Shape = "feature") -> SearchStatement:
    """Centres within ``radius_m`` metres (spheroid) of (lat, lon) EPSG:4326, nearest first (ties by id)."""
    validate_point(lat=lat, lon=lon)
    validate_page(limit=limit, offset=offset, settings=settings)
    radius_m = validate_distance_m(radius_m, param="radius_m", settings=settings)
    where, params = (filters or FacilityFilters()).where()

    def build() -> tuple[sql.Composable, sql.Composable]:
        frag = q.common_fragments() | {"filters": where}
        return (q.page_statement(ctes=q.RADIUS_CTES.format(**frag), page=q.RADIUS_PAGE.format(**frag),
                                 order=sql.SQL("distance_m, id"), shape=shape), q.RADIUS_COUNT.format(**frag))

    page_sql, count_sql = rendered(("radius", shape), where, build)
    params |= _base_params(lat=lat, lon=lon, limit=limit, offset=offset) | {
        "radius_m": radius_m, "knn_n": offset + limit + 1}
    return SearchStatement(page_sql, count_sql, params, limit, offset, shape,
                           {"lat": lat, "lon": lon, "radius_m": radius_m})


def nearest_statement(*, lat: float, lon: float, settings: Settings, k: int = 10, offset: int = 0,
                      max_distance_m: float | None = None, filters: FacilityFilters | None = None,
                      shape: q.Shape = "feature") -> SearchStatement:
    """The ``k`` centres nearest to (lat, lon) after skipping ``offset``, optionally within ``max_distance_m``.

    KNN ``<->`` on the geography index finds candidates; the page is ordered by exact spheroid distance.
    """
    validate_point(lat=lat, lon=lon)
    validate_page(limit=k, offset=offset, settings=settings, param="k")
    if max_distance_m is not None:
        max_distance_m = validate_distance_m(max_distance_m, param="max_distance_m", settings=settings)
    where, params = (filters or FacilityFilters()).where()

    def build() -> tuple[sql.Composable, sql.Composable]:
        frag = q.common_fragments() | {"filters": where}
        frag["within"] = q.NEAREST_WITHIN.format(**frag) if max_distance_m is not None else sql.SQL("")
        return (q.page_statement(ctes=q.NEAREST_CTES.format(**frag), page=q.NEAREST_PAGE.format(**frag),
                                 order=sql.SQL("distance_m, id"), shape=shape), q.NEAREST_COUNT.format(**frag))

    page_sql, count_sql = rendered(("nearest", shape, max_distance_m is not None), where, build)
    params |= _base_params(lat=lat, lon=lon, limit=k, offset=offset) | {
        "knn_n": offset + k + 1, "max_distance_m": max_distance_m}
    query: dict[str, Any] = {"lat": lat, "lon": lon, "k": k}
    if max_distance_m is not None:
        query["max_distance_m"] = max_distance_m
    return SearchStatement(page_sql, count_sql, params, k, offset, shape, query)


def area_statement(area: Area, *, settings: Settings, lat: float | None = None, lon: float | None = None,
                   filters: FacilityFilters | None = None, limit: int = 50, offset: int = 0,
                   shape: q.Shape = "feature") -> SearchStatement:
    """Centres located in a resolved 구 or 행정동 (point-in-polygon on ``geom_4326``).

    Ordered by distance from (lat, lon) when a point is given (``distance_m`` filled), else by name.
    """
    validate_page(limit=limit, offset=offset, settings=settings)
    has_point = _optional_point(lat, lon)
    where, params = (filters or FacilityFilters()).where()
    frag = q.common_fragments() | {"filters": where, "area": q.area_geometry(area.kind)}
    if not has_point:
        frag["distance"] = sql.SQL("NULL::float8")
    order = sql.SQL("distance_m, id") if has_point else sql.SQL("name, id")
    page_sql = q.page_statement(page=q.AREA_PAGE.format(**frag, order=sql.SQL("distance_m, f.id") if has_point
                                                        else sql.SQL("f.name, f.id")),
                                order=order, shape=shape)
    params |= _base_params(lat=lat, lon=lon, limit=limit, offset=offset) | {"area_key": area.key}
    query: dict[str, Any] = {"area": area.as_dict()}
    if has_point:
        query |= {"lat": lat, "lon": lon}
    return SearchStatement(page_sql, q.AREA_COUNT.format(**frag), params, limit, offset, shape, query)


@dataclass(frozen=True)
class AreaLookupStatement:
    """An area search that resolves its 구 or 행정동 in the same statement (``area_lookup_statement``)."""

    page_sql: sql.SQL | sql.Composed
    params: dict[str, Any]
    request: AreaRequest
    options: dict[str, Any]  # area_statement's keyword arguments (settings, point, filters, page, shape)

    def resolved(self, row: tuple[Any, ...]) -> Area | None:
        """The area when the statement found exactly one (else the caller resolves again for the error)."""
        matches = json.loads(row[2]) if row[2] else []
        if len(matches) != 1 or (self.request.district is not None and row[3] != 1):
            return None
        m = matches[0]
        if self.request.dong is None:
            return Area(kind="district", key=m["key"], name=m["name"], district_code=m["district_code"],
                        district_name=m["district_name"])
        return Area(kind="admin_dong", key=m["key"], name=m["name"], district_code=m["district_code"],
                    district_name=m["district_name"], mois_code=m["mois_code"], kostat_code=m["kostat_code"])

    def answered(self, area: Area, row: tuple[Any, ...], count: CountMode) -> SearchPage | None:
        """The page from the statement's row, or None when an exact count must still be run (``area_statement``'s);
        the page is what ``area_statement(area, ...)`` would give, without composing its SQL again."""
        o = self.options
        query: dict[str, Any] = {"area": area.as_dict()}
        if o["lat"] is not None:
            query |= {"lat": o["lat"], "lon": o["lon"]}
        # count_sql only marks that a count exists; it is never run from here.
        page = SearchStatement(self.page_sql, self.page_sql, self.params, o["limit"], o["offset"], o["shape"], query)
        return None if page.needs_count(row[1], count) else page.page((row[0], row[1]), None)


def area_lookup_statement(*, settings: Settings, district: str | None = None, dong: str | None = None,
                          lat: float | None = None, lon: float | None = None,
                          filters: FacilityFilters | None = None, limit: int = 50, offset: int = 0,
                          shape: q.Shape = "feature") -> AreaLookupStatement:
    """``area_statement`` for a 구 or 행정동 named by code or name, resolved inside the same SQL statement: one
    round trip for an answer (``resolve_area``'s lookups and the page at once)."""
    request = AreaRequest.of(district, dong)
    kind = "district" if request.dong is None else "admin_dong"
    options: dict[str, Any] = {"settings": settings, "lat": lat, "lon": lon, "filters": filters, "limit": limit,
                               "offset": offset, "shape": shape}
    validate_page(limit=limit, offset=offset, settings=settings)
    has_point = _optional_point(lat, lon)
    where, params = (filters or FacilityFilters()).where()

    def build() -> tuple[sql.Composable, None]:
        frag = q.common_fragments() | {"filters": where, "area": q.AREA_MATCH_GEOMETRY}
        if not has_point:
            frag["distance"] = sql.SQL("NULL::float8")
        page = q.AREA_PAGE.format(**frag, order=sql.SQL("distance_m, f.id") if has_point
                                  else sql.SQL("f.name, f.id"))
        return q.AREA_PAGE_JSON.format(ctes=q.AREA_MATCH_CTES[kind], page=page,
                                       order=sql.SQL("distance_m, id") if has_point else sql.SQL("name, id"),
                                       shape=q.SHAPES[shape], match_columns=q.AREA_MATCH_COLUMNS), None

    page_sql, _ = rendered(("area_lookup", kind, has_point, shape), where, build)
    params |= _base_params(lat=lat, lon=lon, limit=limit, offset=offset) | {
        "district_value": request.district, "dong_value": request.dong}
    return AreaLookupStatement(page_sql, params, request, options)


def run_area(conn: Conn, statement: AreaLookupStatement, *, count: CountMode = "auto") -> SearchPage:
    """Execute an ``area_lookup_statement`` on a sync connection (errors: as ``resolve_area``)."""
    with driver_connection(conn).cursor() as cur:
        cur.execute(statement.page_sql, statement.params)
        row = cur.fetchone()
    assert row is not None
    area = statement.resolved(row)
    if area is None:
        area = resolve_area(conn, district=statement.request.district, dong=statement.request.dong)
        return run(conn, area_statement(area, **statement.options), count=count)
    page = statement.answered(area, row, count)
    return page if page is not None else run(conn, area_statement(area, **statement.options), count=count)


async def run_area_async(conn: AsyncConnection[Any], statement: AreaLookupStatement, *,
                         count: CountMode = "auto") -> SearchPage:
    """Execute an ``area_lookup_statement`` on a psycopg async connection (errors: as ``resolve_area``)."""
    async with conn.cursor() as cur:
        await cur.execute(statement.page_sql, statement.params)
        row = await cur.fetchone()
    assert row is not None
    area = statement.resolved(row)
    if area is None:
        area = await resolve_area_async(conn, district=statement.request.district, dong=statement.request.dong)
        return await run_async(conn, area_statement(area, **statement.options), count=count)
    page = statement.answered(area, row, count)
    if page is not None:
        return page
    return await run_async(conn, area_statement(area, **statement.options), count=count)


def within_geometry_statement(*, geometry_4326: Mapping[str, Any] | str, lat: float, lon: float,
                              settings: Settings, filters: FacilityFilters | None = None, limit: int = 50,
                              offset: int = 0, shape: q.Shape = "feature") -> SearchStatement:
    """Centres inside a GeoJSON geometry (EPSG:4326), nearest to (lat, lon) first (e.g. an isochrone)."""
    validate_point(lat=lat, lon=lon)
    validate_page(limit=limit, offset=offset, settings=settings)
    where, params = (filters or FacilityFilters()).where()
    frag = q.common_fragments() | {"filters": where, "area": q.GEOMETRY_AREA}
    page_sql = q.page_statement(page=q.AREA_PAGE.format(**frag, order=sql.SQL("distance_m, f.id")),
                                order=sql.SQL("distance_m, id"), shape=shape)
    geojson = geometry_4326 if isinstance(geometry_4326, str) else json.dumps(geometry_4326)
    params |= _base_params(lat=lat, lon=lon, limit=limit, offset=offset) | {"area_geojson": geojson}
    return SearchStatement(page_sql, q.AREA_COUNT.format(**frag), params, limit, offset, shape,
                           {"lat": lat, "lon": lon})


def catchment_radii_m(*, settings: Settings, age: int | None = None) -> dict[str, float]:
    """Catchment radius in metres per facility type value for a child of ``age`` (0-2: times
    ``settings.search.catchment_infant_factor``); types without a configured radius have no catchment.

    Keys of ``settings.search.catchment_radius_m`` may be type values or Korean labels; an unknown key raises
    ``ValueError`` (a configuration error, a server error rather than a bad query).
    """
    factor = settings.search.catchment_infant_factor if age is not None and age <= 2 else 1.0
    radii: dict[str, float] = {}
    for key, radius_m in settings.search.catchment_radius_m.items():
        ftype = parse_facility_type(key)
        if ftype is None:
            raise ValueError(f"DOLBOM_CATCHMENT_RADIUS_M has an unknown facility type {key!r}")
        radii[ftype.value] = float(radius_m) * factor
    return radii


def catchment_statement(*, lat: float, lon: float, settings: Settings, filters: FacilityFilters | None = None,
                        radii_m: Mapping[str, float] | None = None, limit: int = 50, offset: int = 0,
                        shape: q.Shape = "feature") -> SearchStatement | SearchPage:
    """Centres whose catchment contains the home at (lat, lon): distance (spheroid, metres) at most the centre
    type's catchment radius (``catchment_radii_m`` for ``filters.age`` unless ``radii_m`` is given).

    Returns an empty ``SearchPage`` directly when no type has a catchment.
    """
    filters = filters or FacilityFilters()
    validate_point(lat=lat, lon=lon)
    validate_page(limit=limit, offset=offset, settings=settings)
    radii = dict(radii_m) if radii_m is not None else catchment_radii_m(age=filters.age, settings=settings)
    radii = {t: r for t, r in radii.items() if r > 0}
    query: dict[str, Any] = {"lat": lat, "lon": lon, "age": filters.age, "catchment_radius_m": radii}
    if not radii:
        return SearchPage(features_json="[]", number_returned=0, has_more=False, number_matched=0, limit=limit,
                          offset=offset, shape=shape, query=query)
    where, params = filters.where()
    values, radius_params = q.radii_values(radii)
    frag = q.common_fragments() | {"filters": where, "radii": values}
    page_sql = q.page_statement(page=q.CATCHMENT_PAGE.format(**frag), order=sql.SQL("distance_m, id"), shape=shape)
    params |= radius_params | _base_params(lat=lat, lon=lon, limit=limit, offset=offset) | {
        "max_catchment_m": max(radii.values())}
    return SearchStatement(page_sql, q.CATCHMENT_COUNT.format(**frag), params, limit, offset, shape, query)


def _optional_point(lat: float | None, lon: float | None) -> bool:
    if lat is None and lon is None:
        return False
    if lat is None or lon is None:
        raise InvalidQuery("give both lat and lon (or neither)", param="lat,lon")
    validate_point(lat=lat, lon=lon)
    return True


# Sync conveniences for notebooks, the CLI and tests: validate, build, run.


def radius_search(conn: Conn, *, settings: Settings, count: CountMode = "auto", **options: Any) -> SearchPage:
    """``radius_statement`` run on ``conn`` (see there for the options)."""
    return run(conn, radius_statement(settings=settings, **options), count=count)


def nearest_search(conn: Conn, *, settings: Settings, count: CountMode = "auto", **options: Any) -> SearchPage:
    """``nearest_statement`` run on ``conn``."""
    return run(conn, nearest_statement(settings=settings, **options), count=count)


def area_search(conn: Conn, *, settings: Settings, district: str | None = None, dong: str | None = None,
                count: CountMode = "auto", **options: Any) -> SearchPage:
    """The 구 or 행정동 resolved (``geo.search.places.resolve_area``), then ``area_statement`` run on ``conn``."""
    _optional_point(options.get("lat"), options.get("lon"))
    validate_page(limit=options.get("limit", 50), offset=options.get("offset", 0), settings=settings)
    return run_area(conn, area_lookup_statement(settings=settings, district=district, dong=dong, **options),
                    count=count)


def catchment_search(conn: Conn, *, settings: Settings, count: CountMode = "auto", **options: Any) -> SearchPage:
    """``catchment_statement`` run on ``conn``."""
    statement = catchment_statement(settings=settings, **options)
    return statement if isinstance(statement, SearchPage) else run(conn, statement, count=count)


def within_geometry_search(conn: Conn, *, settings: Settings, count: CountMode = "auto",
                           **options: Any) -> SearchPage:
    """``within_geometry_statement`` run on ``conn``."""
    return run(conn, within_geometry_statement(settings=settings, **options), count=count)
