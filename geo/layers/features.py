"""Item queries over a layer: bbox (any served CRS), datetime, CQL2 filter, queryables as plain parameters,
property selection, sorting, output CRS, paging.

The statements are SQLAlchemy Core with every value bound; the API, the exports and the benchmarks run the
same statements. Geometries leave the database as GeoJSON text in the requested CRS and axis order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Subquery,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import Label

from geo.db import PrecompiledQuery
from geo.errors import InvalidQuery
from geo.layers.base import Layer
from geo.layers.cql import Binder, filter_condition
from geo.layers.crs import DEFAULT, ServedCrs


@dataclass(frozen=True)
class ItemsQuery:
    """What a client asked of a collection's items.

    ``bbox`` is (xmin, ymin, xmax, ymax) in ``bbox_crs`` east/north order (see ``crs.parse_bbox``); ``filter``
    is CQL2 JSON (``cql.parse_filter``, already combined with the queryables given as parameters by
    ``queryable_filter``); ``crs`` the output CRS; ``limit`` None means every match (exports); ``properties`` the
    property names to return (None: all; ``parse_properties``); ``sortby`` (name, descending) pairs
    (``parse_sortby``), always followed by the id so that pages never overlap.
    """

    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: ServedCrs = DEFAULT
    datetime: str | None = None
    filter: dict[str, Any] | bool | None = None
    filter_crs: ServedCrs = DEFAULT
    crs: ServedCrs = DEFAULT
    limit: int | None = 10
    offset: int = 0
    properties: tuple[str, ...] | None = None
    sortby: tuple[tuple[str, bool], ...] = ()


# Property types that sort (arrays and geometries do not: ``sortby`` on them is a 400).
SORTABLE_TYPES = ("string", "integer", "number", "boolean", "date", "date-time")


def parse_properties(layer: Layer, value: str) -> tuple[str, ...]:
    """The property names of a ``properties`` parameter (comma-separated; empty: none), each a property of
    ``layer``; the geometry and the id are always returned (OGC API - Features Part 6 draft)."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if layer.property(n) is None]
    if unknown:
        raise InvalidQuery(f"properties: {', '.join(unknown)} not a property of {layer.id}", param="properties",
                           properties=[p.name for p in layer.properties])
    return names


def sortables(layer: Layer) -> list[str]:
    """Names ``sortby`` accepts on ``layer``: ``id`` and the properties of a sortable type."""
    return ["id", *(p.name for p in layer.properties if p.type in SORTABLE_TYPES)]


def parse_sortby(layer: Layer, value: str) -> tuple[tuple[str, bool], ...]:
    """``(name, descending)`` pairs of a ``sortby`` parameter: ``+name,-capacity`` (OGC API - Features Part 8
    draft; no sign is ascending; a ``+`` that arrived unescaped in a query string is a space, read as ``+``)."""
    keys: list[tuple[str, bool]] = []
    allowed = sortables(layer)
    for part in value.split(","):
        text = part.strip()
        descending = text.startswith("-")
        name = text.lstrip("+-").strip()
        if not name:
            raise InvalidQuery(f"sortby {value!r} has an empty key", param="sortby")
        if name not in allowed:
            raise InvalidQuery(f"sortby: {name!r} is not a sortable of {layer.id}", param="sortby",
                               sortables=allowed)
        if any(name == seen for seen, _ in keys):
            raise InvalidQuery(f"sortby names {name!r} twice", param="sortby")
        keys.append((name, descending))
    return tuple(keys)


def _typed(layer: Layer, name: str, text: str) -> Any:
    """The text of a plain query parameter as the queryable's CQL2 JSON literal."""
    prop = layer.property(name)
    kind = prop.type if prop is not None else ("integer" if layer.id_column.type.python_type is int else "string")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise InvalidQuery(f"{name} is {kind}; {text!r} is not one", param=name) from None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise InvalidQuery(f"{name} is boolean; use true or false", param=name)
        return text.lower() == "true"
    try:
        if kind == "date":
            return {"date": date.fromisoformat(text).isoformat()}
        if kind == "date-time":
            return {"timestamp": datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()}
    except ValueError:
        raise InvalidQuery(f"{name} is {kind}; {text!r} is not an RFC 3339 {kind}", param=name) from None
    return text


def queryable_filter(layer: Layer, params: list[tuple[str, str]]) -> dict[str, Any] | None:
    """CQL2 JSON of queryables given as plain query parameters (OGC API - Features Part 3,
    /conf/queryables-query-parameters): ``name=value`` is equality, a repeated name any of its values, an array
    property (``services=holiday``) contains every value given; the conditions are joined by AND. None without
    any."""
    values: dict[str, list[str]] = {}
    for name, text in params:
        values.setdefault(name, []).append(text)
    conditions: list[dict[str, Any]] = []
    for name, texts in values.items():
        prop = layer.property(name)
        if prop is None and name != "id":
            raise InvalidQuery(f"{name!r} is not a queryable of {layer.id}", param=name)
        if prop is not None and prop.type == "array":
            conditions.append({"op": "a_contains", "args": [{"property": name}, texts]})
            continue
        typed = [_typed(layer, name, t) for t in texts]
        if len(typed) == 1:
            conditions.append({"op": "=", "args": [{"property": name}, typed[0]]})
        else:
            conditions.append({"op": "in", "args": [{"property": name}, typed]})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"op": "and", "args": conditions}


def and_filters(*filters: dict[str, Any] | bool | None) -> dict[str, Any] | bool | None:
    """The CQL2 JSON conjunction of the filters that are given (None when none is)."""
    given = [f for f in filters if f is not None]
    if not given:
        return None
    return given[0] if len(given) == 1 else {"op": "and", "args": given}


def geometry_json(geom_4326: ColumnElement, crs: ServedCrs) -> ColumnElement:
    """GeoJSON text of an EPSG:4326 geometry in ``crs`` (axis order of the CRS; 7 decimals for degrees, 2 for m)."""
    geom = geom_4326 if crs.srid == 4326 else func.ST_Transform(geom_4326, crs.srid)
    if crs.north_first:
        geom = func.ST_FlipCoordinates(geom)
    return func.ST_AsGeoJSON(geom, 7 if crs.srid == 4326 else 2, 0)  # options 0: no "crs" member


def _interval(value: str) -> tuple[datetime | None, datetime | None]:
    def instant(text: str, *, end: bool) -> datetime | None:
        if text in ("", ".."):
            return None
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                return datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=UTC) if end else \
                    datetime(day.year, day.month, day.day, tzinfo=UTC)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            raise InvalidQuery(f"datetime {value!r} is not an RFC 3339 date, date-time or interval",
                               param="datetime") from None

    if "/" in value:
        start, _, end = value.partition("/")
        low, high = instant(start, end=False), instant(end, end=True)
        if low is None and high is None:
            raise InvalidQuery("datetime interval open at both ends", param="datetime")
        if low is not None and high is not None and low > high:
            raise InvalidQuery("datetime interval ends before it starts", param="datetime")
        return low, high
    return instant(value, end=False), instant(value, end=True)


def _literal(value: Any, type_: Any) -> ColumnElement:
    return literal(value, type_)


def conditions(layer: Layer, source: Subquery, query: ItemsQuery, *,
               bind: Binder = _literal) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``query`` over ``source``, every value bound by ``bind(value, type)``."""
    where: list[ColumnElement[bool]] = []
    if query.bbox is not None:
        x_west, y_south, x_east, y_north = query.bbox
        if x_west > x_east:  # across the antimeridian (longitude/latitude only, see crs.parse_bbox): two boxes
            boxes = [(x_west, y_south, 180.0, y_north), (-180.0, y_south, x_east, y_north)]
        else:
            boxes = [query.bbox]
        meets: list[ColumnElement[bool]] = []
        for box in boxes:
            xmin, ymin, xmax, ymax = (bind(v, Float) for v in box)
            envelope = func.ST_MakeEnvelope(xmin, ymin, xmax, ymax, query.bbox_crs.srid)
            if query.bbox_crs.srid != 4326:
                envelope = func.ST_Transform(envelope, 4326)
            meets.append(func.ST_Intersects(source.c.geom_4326, envelope))
        where.append(or_(*meets) if len(meets) > 1 else meets[0])
    if query.datetime and layer.temporal:
        low, high = _interval(query.datetime)
        column = source.c[layer.temporal]
        if low is not None:
            where.append(column >= bind(low, column.type))
        if high is not None:
            where.append(column <= bind(high, column.type))
    if query.filter is not None:
        where.append(filter_condition(layer, source, query.filter, filter_crs=query.filter_crs, bind=bind))
    return where


def selected(layer: Layer, query: ItemsQuery) -> tuple[str, ...]:
    """Names of the properties ``query`` returns, in the layer's order."""
    if query.properties is None:
        return tuple(p.name for p in layer.properties)
    return tuple(p.name for p in layer.properties if p.name in query.properties)


def order_by(source: Subquery, query: ItemsQuery) -> list[ColumnElement]:
    """``sortby`` keys, then the id (a total order: every feature on exactly one page)."""
    keys = [source.c[name].desc() if descending else source.c[name].asc() for name, descending in query.sortby
            if name != "id"]
    id_descending = next((descending for name, descending in query.sortby if name == "id"), False)
    return [*keys, source.c.id.desc() if id_descending else source.c.id.asc()]


def items_statement(layer: Layer, query: ItemsQuery, *, bind: Binder = _literal) -> Select:
    """Rows ``id, <selected properties>, geometry (GeoJSON text), number_matched`` of one page, in ``sortby``
    order then by id."""
    source = layer.source()
    columns: list[ColumnElement | Label] = [source.c.id, *(source.c[name] for name in selected(layer, query))]
    stmt = (
        select(*columns, geometry_json(source.c.geom_4326, query.crs).label("geometry"),
               func.count().over().label("number_matched"))
        .where(and_(true(), *conditions(layer, source, query, bind=bind)))
        .order_by(*order_by(source, query))
        .offset(bind(query.offset, Integer))
    )
    if query.limit is not None:
        stmt = stmt.limit(bind(query.limit, Integer))
    return stmt


def frame_statement(layer: Layer, query: ItemsQuery) -> Select:
    """Every matching row with its EPSG:4326 geometry as ``geometry`` (for geopandas exports), in ``sortby``
    order then by id."""
    source = layer.source()
    return (
        select(source.c.id, *(source.c[name] for name in selected(layer, query)),
               source.c.geom_4326.label("geometry"))
        .where(and_(true(), *conditions(layer, source, query)))
        .order_by(*order_by(source, query))
    )


def count_statement(layer: Layer, query: ItemsQuery, *, bind: Binder = _literal) -> Select:
    """``count(*)`` of the features matching ``query`` (independent of paging)."""
    source = layer.source()
    return select(func.count()).select_from(source).where(
        and_(true(), *conditions(layer, source, query, bind=bind)))


def feature_id_value(layer: Layer, feature_id: str) -> Any:
    """``feature_id`` typed like the layer's id column; None when it cannot be one (so: not found)."""
    python_type = layer.id_column.type.python_type
    if python_type is int:
        try:
            return int(feature_id)
        except ValueError:
            return None
    return feature_id


def item_statement(layer: Layer, feature_id: Any, *, crs: ServedCrs = DEFAULT) -> Select:
    """The row of one feature (same columns as ``items_statement`` without the count)."""
    source = layer.source()
    return select(source.c.id, *(source.c[p.name] for p in layer.properties),
                  geometry_json(source.c.geom_4326, crs).label("geometry")).where(
        source.c.id == literal(feature_id, layer.id_column.type))


def extent_statement(layer: Layer) -> Select:
    """Bounding box of the layer in EPSG:4326 as (xmin, ymin, xmax, ymax), nulls when empty."""
    source = layer.source(())
    extent = func.ST_Extent(source.c.geom_4326)
    return select(cast(func.ST_XMin(extent), Float), cast(func.ST_YMin(extent), Float),
                  cast(func.ST_XMax(extent), Float), cast(func.ST_YMax(extent), Float))


def temporal_extent_statement(layer: Layer) -> Select:
    """``(first, last)`` of the layer's temporal property (the one ``datetime`` filters on), nulls when empty."""
    if layer.temporal is None:
        raise ValueError(f"layer {layer.id} has no temporal property")
    source = layer.source((layer.temporal,))
    column = source.c[layer.temporal]
    return select(func.min(column), func.max(column))


# --- precompiled page statements ------------------------------------------------------------------------------
# An items page's statement depends on the query's shape (layer, property selection, output CRS, which of bbox /
# datetime bounds / filter are given and the filter's operators, properties and literal types, sorting), not on its
# values: it is built and compiled once per shape (``PrecompiledQuery``), and a request only binds its values. A
# filter's values and shape are kept per distinct filter (the translation is a pure function of the layer, the
# CQL2 JSON and the filter CRS), so a repeated filter is neither validated nor translated again.

_SHAPES_MAX = 512
_FILTERS_MAX = 1024
_pages: dict[tuple[Any, ...], PrecompiledQuery] = {}
_filters: dict[tuple[str, str, bytes], tuple[Any, tuple[Any, ...]]] = {}


class _Recorder:
    """A binder that names each value's parameter in order (``qv0``, ``qv1``, ...) and keeps its value and type."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.types: list[str] = []

    def __call__(self, value: Any, type_: Any) -> ColumnElement:
        name = f"qv{len(self.values)}"
        self.values.append(value)
        self.types.append(repr(type_))
        return bindparam(name, value, type_=type_)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"qv{i}" for i in range(len(self.values)))


def _json_shape(node: Any) -> Any:
    """CQL2 JSON with its literal numbers and strings replaced by their type (operators, property names,
    booleans, nulls and open interval ends kept): what decides the SQL of a filter, with the literal types the
    translation chose."""
    if isinstance(node, dict):
        return tuple(sorted((k, v if k in ("op", "property") else _json_shape(v)) for k, v in node.items()))
    if isinstance(node, list):
        return ("[", *(_json_shape(v) for v in node))
    if node is None or isinstance(node, bool) or node == "..":
        return node
    return type(node).__name__


def _filter_values(layer: Layer, query: ItemsQuery) -> tuple[Any, tuple[Any, ...]]:
    """(shape, bound values) of ``query.filter``, translated (and validated) once per distinct filter."""
    if query.filter is None:
        return None, ()
    key = (layer.id, query.filter_crs.uri, orjson.dumps(query.filter, option=orjson.OPT_SORT_KEYS))
    known = _filters.get(key)
    if known is None:
        recorder = _Recorder()
        filter_condition(layer, layer.source(), query.filter, filter_crs=query.filter_crs, bind=recorder)
        known = ((_json_shape(query.filter), tuple(recorder.types)), tuple(recorder.values))
        if len(_filters) >= _FILTERS_MAX:
            _filters.clear()
        _filters[key] = known
    return known


def _bbox_values(query: ItemsQuery) -> tuple[Any, tuple[float, ...]]:
    if query.bbox is None:
        return None, ()
    x_west, y_south, x_east, y_north = query.bbox
    if x_west > x_east:  # as ``conditions``: two boxes across the antimeridian
        return (query.bbox_crs.srid, 2), (x_west, y_south, 180.0, y_north, -180.0, y_south, x_east, y_north)
    return (query.bbox_crs.srid, 1), query.bbox


def _datetime_values(layer: Layer, query: ItemsQuery) -> tuple[Any, tuple[Any, ...]]:
    if not (query.datetime and layer.temporal):
        return None, ()
    low, high = _interval(query.datetime)
    return (low is not None, high is not None), tuple(v for v in (low, high) if v is not None)


def _page_query(layer: Layer, query: ItemsQuery, kind: str) -> tuple[PrecompiledQuery, tuple[Any, ...]]:
    """The precompiled statement of ``query``'s shape (``kind``: ``items`` or ``count``) and its values."""
    bbox_shape, bbox_values = _bbox_values(query)
    datetime_shape, datetime_values = _datetime_values(layer, query)
    filter_shape, filter_values = _filter_values(layer, query)
    values = (*bbox_values, *datetime_values, *filter_values)
    if kind == "items":
        values = (*values, query.offset) if query.limit is None else (*values, query.offset, query.limit)
    key = (kind, layer.id, query.properties, query.crs.uri, bbox_shape, datetime_shape, filter_shape,
           query.filter_crs.uri, query.sortby, query.limit is None)
    compiled = _pages.get(key)
    if compiled is None:
        recorder = _Recorder()
        stmt = items_statement(layer, query, bind=recorder) if kind == "items" else \
            count_statement(layer, query, bind=recorder)
        if tuple(recorder.values) != values:  # the shape's values must come in the statement's order
            raise RuntimeError(f"items values out of step with the statement of {key!r}")
        compiled = PrecompiledQuery(stmt, recorder.names, values)
        if len(_pages) >= _SHAPES_MAX:
            _pages.clear()
        _pages[key] = compiled
    return compiled, values


def items_page_query(layer: Layer, query: ItemsQuery) -> tuple[PrecompiledQuery, tuple[Any, ...]]:
    """``items_statement`` of ``query``, precompiled for its shape, and the values to bind."""
    return _page_query(layer, query, "items")


def count_page_query(layer: Layer, query: ItemsQuery) -> tuple[PrecompiledQuery, tuple[Any, ...]]:
    """``count_statement`` of ``query``, precompiled for its shape, and the values to bind."""
    return _page_query(layer, query, "count")
