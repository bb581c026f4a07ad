"""The SQL of facility searches, composed with ``psycopg.sql`` from the constant fragments of this module.

Every value is a bound ``%(name)s`` parameter; identifiers come from ``AREA_TABLES`` only. Each search selects
a page of centres (``page``) and the database writes it as JSON: GeoJSON Features (RFC 7946, lon/lat rounded to
7 decimals, ``distance_m`` to 2) or compact items, from one list of properties (``PROPERTIES``). The statement
returns one row ``(json_text, fetched)`` where ``fetched`` counts the page plus one probe row that tells whether
a next page exists, so no search counts all of its matches unless asked to.

Distances are metres on the WGS84 spheroid (``geography``). Predicates are written against
``f.geom_4326::geography`` exactly like the expression index ``ix_facilities_geog``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from psycopg import sql

from geo.domain import FACILITY_STATUS_KO, FACILITY_TYPE_KO, SERVICE_KO
from geo.search.fields import fields_for, source_columns

Shape = Literal["feature", "item", "marker"]

FACILITY_GEOG = sql.SQL("f.geom_4326::geography")
POINT_GEOG = sql.SQL("ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography")
DISTANCE_M = sql.SQL("ST_Distance({geog}, {point})").format(geog=FACILITY_GEOG, point=POINT_GEOG)
# Added to the k-th candidate's distance so that ST_DWithin's own spheroid computation cannot drop it.
KNN_BOUND_SLACK_M = 0.01

# The centre's public fields of a result (``geo.search.fields``) and what the search adds about it.
SEARCH_FIELDS = fields_for("search")
# Columns every page selects from facilities (alias f) into the page (alias p): what the fields read.
PAGE_COLUMNS = sql.SQL(", ".join(["f.id", *(f"f.{c}" for c in source_columns(SEARCH_FIELDS)), "f.geom_4326"]))

# Korean labels, bound once per statement as jsonb: {"type": {...}, "status": {...}, "service": {...}}.
LABELS_JSON = json.dumps({
    "type": {k.value: v for k, v in FACILITY_TYPE_KO.items()},
    "status": {k.value: v for k, v in FACILITY_STATUS_KO.items()},
    "service": {k.value: v for k, v in SERVICE_KO.items()},
}, ensure_ascii=False)

# Result fields that are not the centre's: distance from the query point, the catchment radius applied.
RESULT_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("distance_m", "round(p.distance_m::numeric, 2)"),
    ("catchment_radius_m", "p.catchment_radius_m"),
)
# (key, expression on the page alias p): the properties of a centre in every result.
PROPERTIES: tuple[tuple[str, str], ...] = (*((f.name, f.sql("p")) for f in SEARCH_FIELDS), *RESULT_PROPERTIES)
LON = sql.SQL("round(ST_X(p.geom_4326)::numeric, 7)")
LAT = sql.SQL("round(ST_Y(p.geom_4326)::numeric, 7)")


def _pairs() -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(key), sql.SQL(expr))  # type: ignore[arg-type]
                              for key, expr in PROPERTIES)


FEATURE_JSON = sql.SQL("""json_build_object('type', 'Feature', 'id', p.id,
    'geometry', json_build_object('type', 'Point', 'coordinates', json_build_array({lon}, {lat})),
    'properties', json_build_object({pairs}))""").format(lon=LON, lat=LAT, pairs=_pairs())
ITEM_JSON = sql.SQL("json_build_object('id', p.id, 'lon', {lon}, 'lat', {lat}, {pairs})").format(
    lon=LON, lat=LAT, pairs=_pairs())
# What a map marker and its list entry show, nothing more (the map's first view: details come on demand).
MARKER_KEYS = ("name", "facility_type", "free_by_age", "location_approximate", "vacancy_as_of")
MARKER_JSON = sql.SQL("json_build_object('id', p.id, 'lon', {lon}, 'lat', {lat}, {pairs})").format(
    lon=sql.SQL("round(ST_X(p.geom_4326)::numeric, 6)"), lat=sql.SQL("round(ST_Y(p.geom_4326)::numeric, 6)"),
    pairs=sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(key), sql.SQL(expr))  # type: ignore[arg-type]
                             for key, expr in PROPERTIES if key in MARKER_KEYS))
# Rendered once to plain SQL: the composed trees (63 nodes, 21 literals to adapt) were rendered again on every
# execution, ~15 % of the API's CPU per search (benchmarks/bench_read.py). Only constants are rendered here.
SHAPES: dict[str, sql.Composable] = {"feature": sql.SQL(FEATURE_JSON.as_string()),
                                     "item": sql.SQL(ITEM_JSON.as_string()),
                                     "marker": sql.SQL(MARKER_JSON.as_string())}

# The page (rows ordered and limited, one probe row beyond the page), numbered, written as one JSON array.
PAGE_JSON = sql.SQL("""
WITH {ctes}
page AS ({page}),
numbered AS (SELECT page.*, row_number() OVER (ORDER BY {order}) AS rn FROM page)
SELECT COALESCE(json_agg({shape} ORDER BY p.rn) FILTER (WHERE p.rn <= %(limit)s), '[]')::text, count(*)
FROM numbered p""")

# The candidates are the first n by KNN (<-> on the index, sphere) among the matches inside the radius's bounding
# box (the box ST_DWithin's own index condition uses, so it holds the whole circle). With ST_DWithin itself here the
# planner underestimates the matches (its selectivity is counted twice) and, in a dense city, bitmap-scans every
# match of the circle before sorting; with the box alone it walks the index in distance order and stops after n
# (benchmarks/README.md, "dense"). Box corners beyond the radius only raise the bound, which the page caps.
RADIUS_CTES = sql.SQL("""knn AS MATERIALIZED (
    SELECT {distance} AS d FROM facilities f
    WHERE {geog} && _ST_Expand({point}, %(radius_m)s) AND {filters}
    ORDER BY {geog} <-> {point}
    LIMIT %(knn_n)s
),""")
# KNN on the index orders candidates by <-> (sphere); the exact first n on the spheroid all lie within the largest
# spheroid distance among the first n candidates, so the page re-selects with ST_DWithin and orders exactly.
RADIUS_PAGE = sql.SQL("""
    SELECT {columns}, {distance} AS distance_m, NULL::float8 AS catchment_radius_m
    FROM facilities f
    WHERE ST_DWithin({geog}, {point}, LEAST(%(radius_m)s, (SELECT max(d) FROM knn) + %(slack_m)s)) AND {filters}
    ORDER BY distance_m, f.id
    LIMIT %(probe)s OFFSET %(offset)s""")
RADIUS_COUNT = sql.SQL(
    "SELECT count(*) FROM facilities f WHERE ST_DWithin({geog}, {point}, %(radius_m)s) AND {filters}")

NEAREST_CTES = sql.SQL("""knn AS MATERIALIZED (
    SELECT {distance} AS d FROM facilities f
    WHERE {filters} {within}
    ORDER BY {geog} <-> {point}
    LIMIT %(knn_n)s
),""")
NEAREST_PAGE = sql.SQL("""
    SELECT {columns}, {distance} AS distance_m, NULL::float8 AS catchment_radius_m
    FROM facilities f
    WHERE ST_DWithin({geog}, {point}, (SELECT max(d) FROM knn) + %(slack_m)s) AND {filters}
    ORDER BY distance_m, f.id
    LIMIT %(probe)s OFFSET %(offset)s""")
NEAREST_WITHIN = sql.SQL("AND ST_DWithin({geog}, {point}, %(max_distance_m)s)")
NEAREST_COUNT = sql.SQL("SELECT count(*) FROM facilities f WHERE {filters} {within}")

AREA_PAGE = sql.SQL("""
    SELECT {columns}, {distance} AS distance_m, NULL::float8 AS catchment_radius_m
    FROM facilities f
    WHERE ST_Intersects(f.geom_4326, {area}) AND {filters}
    ORDER BY {order}
    LIMIT %(probe)s OFFSET %(offset)s""")
AREA_COUNT = sql.SQL("SELECT count(*) FROM facilities f WHERE ST_Intersects(f.geom_4326, {area}) AND {filters}")
GEOMETRY_AREA = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON(%(area_geojson)s), 4326)")

CATCHMENT_PAGE = sql.SQL("""
    SELECT {columns}, {distance} AS distance_m, c.radius_m AS catchment_radius_m
    FROM facilities f
    JOIN (VALUES {radii}) AS c (facility_type, radius_m) ON c.facility_type = f.facility_type
    WHERE ST_DWithin({geog}, {point}, %(max_catchment_m)s)
      AND ST_DWithin({geog}, {point}, c.radius_m)
      AND {filters}
    ORDER BY distance_m, f.id
    LIMIT %(probe)s OFFSET %(offset)s""")
CATCHMENT_COUNT = sql.SQL("""SELECT count(*) FROM facilities f
    JOIN (VALUES {radii}) AS c (facility_type, radius_m) ON c.facility_type = f.facility_type
    WHERE ST_DWithin({geog}, {point}, %(max_catchment_m)s) AND ST_DWithin({geog}, {point}, c.radius_m)
      AND {filters}""")

# The area resolved in the page's own statement (one round trip): the 구 or 행정동 rows matching the request (at
# most two are read: one is a match, two are ambiguous) and how many 구 the ``district`` value names. The page's
# area is the geometry of the one match; with none or several it is NULL, the page is empty and the caller
# resolves again for the error (geo.search.places.resolve_area) - errors may take another trip, answers do not.
AREA_MATCH_CTES: dict[str, sql.Composable] = {
    "district": sql.SQL("""area_match AS MATERIALIZED (
    SELECT d.code AS key, d.name, d.code AS district_code, d.name AS district_name,
           NULL::text AS mois_code, NULL::text AS kostat_code, d.geom_4326
    FROM districts d WHERE d.code = %(district_value)s OR d.name = %(district_value)s
    ORDER BY d.code LIMIT 2
),
district_match AS (SELECT 1 AS n),"""),
    "admin_dong": sql.SQL("""district_match AS MATERIALIZED (
    SELECT count(*) AS n FROM districts d WHERE d.code = %(district_value)s OR d.name = %(district_value)s
),
area_match AS MATERIALIZED (
    SELECT a.id::text AS key, a.name, a.district_code, d.name AS district_name, a.mois_code, a.kostat_code,
           a.geom_4326
    FROM admin_dongs a JOIN districts d ON d.code = a.district_code
    WHERE (a.mois_code = %(dong_value)s OR a.kostat_code = %(dong_value)s OR a.name = %(dong_value)s)
      AND (%(district_value)s::text IS NULL OR d.code = %(district_value)s OR d.name = %(district_value)s)
    ORDER BY a.district_code, a.name, a.id LIMIT 2
),"""),
}
AREA_MATCH_GEOMETRY = sql.SQL("""(SELECT m.geom_4326 FROM area_match m
    WHERE (SELECT count(*) FROM area_match) = 1
      AND (%(district_value)s::text IS NULL OR (SELECT n FROM district_match) = 1))""")
# Third and fourth columns of the statement: the matches (0-2) and the 구 count, as JSON.
AREA_MATCH_COLUMNS = sql.SQL("""(SELECT json_agg(json_build_object('key', m.key, 'name', m.name,
        'district_code', m.district_code, 'district_name', m.district_name, 'mois_code', m.mois_code,
        'kostat_code', m.kostat_code)) FROM area_match m)::text,
    (SELECT n FROM district_match)""")
AREA_PAGE_JSON = sql.SQL("""
WITH {ctes}
page AS ({page}),
numbered AS (SELECT page.*, row_number() OVER (ORDER BY {order}) AS rn FROM page)
SELECT COALESCE(json_agg({shape} ORDER BY p.rn) FILTER (WHERE p.rn <= %(limit)s), '[]')::text, count(*),
    {match_columns}
FROM numbered p""")

# Administrative areas: table and key condition per kind; identifiers from here only.
AREA_TABLES: dict[str, tuple[str, str]] = {
    "district": ("districts", "code"),
    "admin_dong": ("admin_dongs", "id"),
}


def area_geometry(kind: str) -> sql.Composable:
    """The geometry of a resolved 구 or 행정동 (``AREA_TABLES``) keyed by ``%(area_key)s``."""
    table, key = AREA_TABLES[kind]
    cast = "::integer" if key == "id" else ""
    return sql.SQL("(SELECT a.geom_4326 FROM {table} a WHERE a.{key} = %(area_key)s{cast})").format(
        table=sql.Identifier(table), key=sql.Identifier(key), cast=sql.SQL(cast))


def radii_values(radii_m: dict[str, float]) -> tuple[sql.Composable, dict[str, Any]]:
    """``VALUES`` rows ``(facility_type, radius_m)`` with bound placeholders, in type order."""
    rows: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for i, (ftype, radius_m) in enumerate(sorted(radii_m.items())):
        type_key, radius_key = f"ct_{i}", f"cr_{i}"
        rows.append(sql.SQL("({}, {}::float8)").format(sql.Placeholder(type_key), sql.Placeholder(radius_key)))
        params[type_key] = ftype
        params[radius_key] = float(radius_m)
    return sql.SQL(", ").join(rows), params


def page_statement(*, page: sql.Composable, order: sql.Composable, shape: Shape,
                   ctes: sql.Composable | None = None) -> sql.Composed:
    """The JSON page statement around a ``page`` select (``ctes`` end with a comma)."""
    return PAGE_JSON.format(ctes=ctes or sql.SQL(""), page=page, order=order, shape=SHAPES[shape])


def common_fragments() -> dict[str, sql.Composable]:
    """The fragments every template above takes."""
    return {"columns": PAGE_COLUMNS, "distance": DISTANCE_M, "geog": FACILITY_GEOG, "point": POINT_GEOG}
