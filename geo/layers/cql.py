"""CQL2 filters (OGC API - Features Part 3): text or JSON in, a bound SQLAlchemy condition out.

Both encodings are parsed and validated by the ``cql2`` package into CQL2 JSON; this module walks that JSON
and builds SQLAlchemy expressions over a layer's columns. Every literal is a bound parameter; property names
are looked up in the layer's registry, never put into SQL as text.

Supported: ``and``/``or``/``not``, comparisons, ``like`` (with ``casei``), ``between``, ``in``, ``isNull``,
arithmetic, the spatial predicates ``s_intersects``, ``s_disjoint``, ``s_contains``, ``s_within``, ``s_touches``,
``s_crosses``, ``s_overlaps``, ``s_equals`` and ``s_dwithin`` (metres, on the spheroid), the array predicates
``a_equals``, ``a_contains``, ``a_containedby``, ``a_overlaps``, and ``t_before``/``t_after``/``t_equals``/
``t_intersects`` on dates and timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import cql2
from geoalchemy2 import Geography
from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    Subquery,
    Text,
    and_,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)

from geo.errors import InvalidQuery
from geo.layers.base import Layer, Property
from geo.layers.crs import ServedCrs

FILTER_LANGS = ("cql2-text", "cql2-json")
GEOMETRY_NAMES = ("geometry", "geom")

_COMPARISONS = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", ">": "__gt__", "<=": "__le__", ">=": "__ge__"}
_SPATIAL = {
    "s_intersects": func.ST_Intersects, "s_disjoint": func.ST_Disjoint, "s_contains": func.ST_Contains,
    "s_within": func.ST_Within, "s_touches": func.ST_Touches, "s_crosses": func.ST_Crosses,
    "s_overlaps": func.ST_Overlaps, "s_equals": func.ST_Equals,
}
_ARRAY = ("a_equals", "a_contains", "a_containedby", "a_overlaps")
_TEMPORAL = ("t_before", "t_after", "t_equals", "t_intersects")


def parse_filter(text: str, *, lang: str | None = None) -> dict[str, Any]:
    """CQL2 JSON of a ``filter`` parameter in ``lang`` (``cql2-text``, the default, or ``cql2-json``)."""
    lang = lang or "cql2-text"
    if lang == "cql-text":  # the draft name GDAL's OAPIF driver (3.6) sends; its comparisons are CQL2 text
        lang = "cql2-text"
    if lang not in FILTER_LANGS:
        raise InvalidQuery(f"filter-lang {lang!r} is not supported; use {' or '.join(FILTER_LANGS)}",
                           param="filter-lang")
    try:
        if lang == "cql2-json":
            expr = cql2.Expr(json.loads(text))
        else:
            expr = cql2.Expr(text)
        parsed = expr.to_json()
    except Exception as exc:  # cql2 raises plain Exception/ValueError subclasses with the parser's message
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidQuery(f"filter is not valid {lang}: {first_line}", param="filter",
                           parser_message=str(exc)) from None
    if not isinstance(parsed, dict | bool):
        raise InvalidQuery("filter must be a boolean expression", param="filter")
    return parsed  # type: ignore[return-value]


# How a literal value becomes SQL: ``literal`` (a bound parameter carrying its value) by default; the precompiled
# items statements (``geo.layers.features.items_query_sql``) pass a binder that records the value and returns a
# named ``bindparam`` without it, so that the statement's SQL depends on the filter's shape only.
Binder = Callable[[Any, Any], ColumnElement]


def _literal(value: Any, type_: Any) -> ColumnElement:
    return literal(value, type_)


class _Translator:
    def __init__(self, layer: Layer, source: Subquery, filter_crs: ServedCrs, bind: Binder = _literal) -> None:
        self.layer = layer
        self.source = source
        self.crs = filter_crs
        self.bind = bind

    # -- operands -------------------------------------------------------------------------------------------
    def prop(self, name: str) -> tuple[ColumnElement, Property | None]:
        if name in GEOMETRY_NAMES:
            return self.source.c.geom_4326, None
        if name == "id":
            return self.source.c.id, None
        prop = self.layer.property(name)
        if prop is None:
            raise InvalidQuery(f"{name!r} is not a queryable of {self.layer.id}", param="filter",
                               queryables=["id", "geometry", *(p.name for p in self.layer.properties)])
        return self.source.c[name], prop

    def scalar(self, node: Any, like: Property | None = None) -> ColumnElement:
        if isinstance(node, dict):
            if "property" in node:
                return self.prop(node["property"])[0]
            if "date" in node:
                return self.bind(_parse_date(node["date"]), Date)
            if "timestamp" in node:
                return self.bind(_parse_timestamp(node["timestamp"]), DateTime(timezone=True))
            if "op" in node:
                return self.operation(node)
            raise InvalidQuery(f"unsupported operand {json.dumps(node)[:80]}", param="filter")
        if isinstance(node, bool):
            if like is not None and like.type != "boolean":
                raise _type_error(like, node)
            return self.bind(node, Boolean)
        if isinstance(node, int | float):
            if like is not None and like.type not in ("integer", "number"):
                raise _type_error(like, node)
            if like is not None and like.type == "integer" and float(node).is_integer():
                return self.bind(int(node), Integer)
            return self.bind(float(node), Float)
        if isinstance(node, str):
            if like is not None and like.type in ("integer", "number", "boolean"):
                raise _type_error(like, node)
            if like is not None and like.type == "date":
                return self.bind(_parse_date(node), Date)
            if like is not None and like.type == "date-time":
                return self.bind(_parse_timestamp(node), DateTime(timezone=True))
            return self.bind(node, Text)
        raise InvalidQuery(f"unsupported operand {json.dumps(node)[:80]}", param="filter")

    def operand_property(self, node: Any) -> Property | None:
        if isinstance(node, dict) and "property" in node:
            return self.prop(node["property"])[1]
        if isinstance(node, dict) and node.get("op") in ("casei", "accenti", "lower", "upper"):
            return self.operand_property(node["args"][0])
        return None

    def geometry(self, node: Any) -> ColumnElement:
        if isinstance(node, dict) and "property" in node:
            column, prop = self.prop(node["property"])
            if prop is not None:
                raise InvalidQuery(f"{node['property']!r} is not a geometry", param="filter")
            return column
        if isinstance(node, dict) and "bbox" in node:
            box = [float(v) for v in node["bbox"]]
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            if len(box) != 4:
                raise InvalidQuery("bbox literal must have 4 numbers", param="filter")
            if self.crs.north_first:
                box = [box[1], box[0], box[3], box[2]]
            geom = func.ST_MakeEnvelope(*(self.bind(v, Float) for v in box), self.crs.srid)
            return func.ST_Transform(geom, 4326) if self.crs.srid != 4326 else geom
        if isinstance(node, dict) and "type" in node:
            geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(self.bind(json.dumps(node), Text)), self.crs.srid)
            if self.crs.north_first:
                geom = func.ST_FlipCoordinates(geom)
            return func.ST_Transform(geom, 4326) if self.crs.srid != 4326 else geom
        raise InvalidQuery(f"expected a geometry, got {json.dumps(node)[:80]}", param="filter")

    def array(self, node: Any) -> ColumnElement:
        if isinstance(node, list):
            if not all(isinstance(v, str) for v in node):
                raise InvalidQuery("array literals must hold strings", param="filter")
            return self.bind(node, ARRAY(Text))
        column, prop = self.prop(node["property"]) if isinstance(node, dict) and "property" in node else (None, None)
        if column is None or prop is None or prop.type != "array":
            raise InvalidQuery(f"expected an array, got {json.dumps(node)[:80]}", param="filter")
        return column

    # -- conditions -------------------------------------------------------------------------------------------
    def condition(self, node: Any) -> ColumnElement[bool]:
        if isinstance(node, bool):
            return true() if node else false()
        if not isinstance(node, dict) or "op" not in node:
            raise InvalidQuery(f"expected a condition, got {json.dumps(node)[:80]}", param="filter")
        return self.operation(node)

    def operation(self, node: dict[str, Any]) -> ColumnElement:
        op = str(node["op"]).lower()
        args = node.get("args", [])
        if op == "and":
            return and_(*(self.condition(a) for a in args))
        if op == "or":
            return or_(*(self.condition(a) for a in args))
        if op == "not":
            return not_(self.condition(args[0]))
        if op in _COMPARISONS:
            like = self.operand_property(args[0]) or self.operand_property(args[1])
            lhs, rhs = self.scalar(args[0], like), self.scalar(args[1], like)
            return getattr(lhs, _COMPARISONS[op])(rhs)  # type: ignore[no-any-return]
        if op == "like":
            return self.scalar(args[0]).like(self.scalar(args[1]), escape="\\")
        if op == "between":
            like = self.operand_property(args[0])
            return self.scalar(args[0]).between(self.scalar(args[1], like), self.scalar(args[2], like))
        if op == "in":
            like = self.operand_property(args[0])
            if not isinstance(args[1], list):
                raise InvalidQuery("in needs a list", param="filter")
            return self.scalar(args[0]).in_([self.scalar(v, like) for v in args[1]])
        if op == "isnull":
            return self.scalar(args[0]).is_(None)
        if op in ("casei", "lower"):
            return func.lower(self.scalar(args[0]))
        if op in ("+", "-", "*", "/"):
            lhs, rhs = self.scalar(args[0]), self.scalar(args[1])
            return {"+": lhs + rhs, "-": lhs - rhs, "*": lhs * rhs, "/": lhs / rhs}[op]
        if op in _SPATIAL:
            return _SPATIAL[op](self.geometry(args[0]), self.geometry(args[1]))  # type: ignore[no-any-return]
        if op == "s_dwithin":
            distance_m = args[2]
            if not isinstance(distance_m, int | float) or distance_m < 0:
                raise InvalidQuery("s_dwithin distance must be a non-negative number of metres", param="filter")
            return func.ST_DWithin(cast(self.geometry(args[0]), Geography), cast(self.geometry(args[1]), Geography),
                                   self.bind(float(distance_m), Float))  # type: ignore[no-any-return]
        if op in _ARRAY:
            lhs, rhs = self.array(args[0]), self.array(args[1])
            if op == "a_equals":
                return lhs == rhs
            if op == "a_contains":
                return lhs.contains(rhs)  # type: ignore[no-any-return]
            if op == "a_containedby":
                return lhs.contained_by(rhs)  # type: ignore[no-any-return]
            return lhs.overlap(rhs)  # type: ignore[no-any-return]
        if op in _TEMPORAL:
            return self.temporal(op, args)
        raise InvalidQuery(f"operator {node['op']!r} is not supported", param="filter")

    def temporal(self, op: str, args: list[Any]) -> ColumnElement[bool]:
        lhs = self.scalar(args[0], self.operand_property(args[0]))
        rhs_node = args[1]
        if isinstance(rhs_node, dict) and "interval" in rhs_node:
            start, end = rhs_node["interval"]
            stamp = DateTime(timezone=True)
            low = None if start in ("..", None) else self.bind(_parse_timestamp(_instant(start)), stamp)
            high = None if end in ("..", None) else self.bind(_parse_timestamp(_instant(end)), stamp)
            if op == "t_before":
                return lhs < low if low is not None else false()
            if op == "t_after":
                return lhs > high if high is not None else false()
            if op == "t_intersects":
                return and_(*(c for c in (lhs >= low if low is not None else None,
                                          lhs <= high if high is not None else None) if c is not None))
            raise InvalidQuery(f"{op} with an interval is not supported", param="filter")
        rhs = self.scalar(rhs_node, self.operand_property(args[0]))
        return {"t_before": lhs < rhs, "t_after": lhs > rhs, "t_equals": lhs == rhs, "t_intersects": lhs == rhs}[op]


def _instant(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("timestamp") or value.get("date"))
    return str(value)


def _type_error(prop: Property, value: Any) -> InvalidQuery:
    return InvalidQuery(f"{prop.name} is {prop.type}; {value!r} does not compare with it", param="filter")


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidQuery(f"{value!r} is not a date (YYYY-MM-DD)", param="filter") from None


def _parse_timestamp(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        raise InvalidQuery(f"{value!r} is not an RFC 3339 timestamp", param="filter") from None


def filter_condition(layer: Layer, source: Subquery, parsed: dict[str, Any] | bool, *,
                     filter_crs: ServedCrs, bind: Binder = _literal) -> ColumnElement[bool]:
    """The SQL condition of the CQL2 JSON ``parsed`` over ``source`` (``layer.source()``), literals bound (by
    ``bind(value, type)``: ``literal`` unless given)."""
    return _Translator(layer, source, filter_crs, bind).condition(parsed)
