"""Walking and driving catchments (isochrones) on an OSM road network with pgRouting.

``isochrone(conn, lat=..., lon=..., minutes=..., mode=...)`` snaps the point to the nearest usable vertex, runs
``pgr_drivingDistance`` and builds the catchment polygon by buffering the reached parts of the network (whole
edges plus the reached fraction of partly reached ones) in EPSG:5179, then lists the operating centres inside
it. The road network itself is imported by ``geo.ingest.osm.import_osm_network``.

Why a buffered network rather than a concave hull: a hull of reached vertices bridges rivers, rail yards and
expressways that the network does not cross, and it claims whole blocks behind a single reached corner; the
buffer (``buffer_m``, default 50 m: the depth of a typical building lot fronting a Seoul street) claims only
what is next to a reachable road. It is only as good as the network: the Overpass extracts in
``../shared/data/osm`` hold roads down to ``residential`` but no footways or complex-internal service roads,
so centres deep inside apartment complexes (Jamsil: median 175 m from the nearest road of the extract) fall
outside a 50 m band; a full OSM extract (Geofabrik ``.osm.pbf``) or a larger ``buffer_m`` closes that gap.

Simplifications: the origin is snapped to a vertex and the walk to it is not counted; driving is free flow at
the speed limit (``maxspeed``) or the road class' default (see ``geo.ingest.osm``), with no turn restrictions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql
from sqlalchemy import Connection, TextClause, text

from geo.errors import InvalidQuery, RoutingUnavailable
from geo.search import FacilityFilters, FacilityHit, SearchPage, within_geometry_search
from geo.settings import Settings
from geo.validation import clean_text, validate_point

Mode = Literal["walk", "drive"]

MAX_SNAP_M = 500.0
"""A point farther than this (metres) from every usable vertex is outside the road network."""

MAX_MINUTES = 60.0
DEFAULT_BUFFER_M = 50.0

# Identifiers of the per-mode cost columns: the only identifiers interpolated into SQL in this module.
_COST_COLUMNS: dict[str, tuple[str, str]] = {
    "walk": ("walk_cost_s", "walk_reverse_cost_s"),
    "drive": ("drive_cost_s", "drive_reverse_cost_s"),
}
# Driving is directed (one-way streets); walking is not.
_DIRECTED: dict[str, bool] = {"walk": False, "drive": True}

# --------------------------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class StartVertex:
    """The vertex a query point is snapped to."""

    id: int
    network: str
    lon: float
    lat: float
    distance_m: float


@dataclass(frozen=True)
class Isochrone:
    """A network catchment: the area reachable within ``minutes`` by ``mode`` from the snapped origin.

    ``geometry_4326`` is a GeoJSON (RFC 7946, lon/lat, counter-clockwise exteriors) Polygon or MultiPolygon;
    ``facilities`` are the centres inside it passing the filters, nearest to the origin first (at most the
    limit asked for), ``facilities_matched`` all of them.
    """

    network: str
    mode: str
    minutes: float
    origin_lon: float
    origin_lat: float
    start: StartVertex
    buffer_m: float
    area_km2: float
    reached_vertices: int
    reached_length_km: float
    geometry_4326: dict[str, Any]
    facilities_page: SearchPage

    @property
    def facilities(self) -> list[FacilityHit]:
        """The centres inside, nearest to the origin first."""
        return self.facilities_page.items

    @property
    def facilities_matched(self) -> int:
        """Every centre inside passing the filters (not only the listed ones)."""
        return self.facilities_page.number_matched or 0

    def feature(self) -> dict[str, Any]:
        """The catchment polygon as a GeoJSON Feature with its figures as properties."""
        return {
            "type": "Feature",
            "geometry": self.geometry_4326,
            "properties": {
                "kind": "isochrone",
                "network": self.network,
                "mode": self.mode,
                "minutes": self.minutes,
                "area_km2": self.area_km2,
                "buffer_m": self.buffer_m,
                "reached_vertices": self.reached_vertices,
                "reached_length_km": self.reached_length_km,
                "facilities_matched": self.facilities_matched,
                "origin": [self.origin_lon, self.origin_lat],
                "start_vertex": {"id": self.start.id, "coordinates": [self.start.lon, self.start.lat],
                                 "distance_m": self.start.distance_m},
            },
        }


def _check_mode(mode: str) -> tuple[str, str]:
    if mode not in _COST_COLUMNS:
        raise InvalidQuery(f"mode must be one of {sorted(_COST_COLUMNS)}, not {mode!r}", param="mode")
    return _COST_COLUMNS[mode]


def network_names(conn: Connection) -> list[str]:
    """Names of the imported road networks."""
    return list(conn.execute(text("SELECT DISTINCT network FROM road_edges ORDER BY network")).scalars())


def _require_network(conn: Connection, network: str | None) -> None:
    if network is None:
        if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM road_edges)")).scalar_one():
            raise RoutingUnavailable("no road network has been imported (run `dolbom osm import FILE.osm`)")
        return
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM road_edges WHERE network = :network)"),
                        {"network": network}).scalar_one():
        raise RoutingUnavailable(f"road network {network!r} has not been imported", network=network,
                                 available=network_names(conn))


# Nearest vertex (KNN <-> on the geography index) with an edge leaving it that the mode may use.
_NEAREST_SQL = """
        WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g)
        SELECT v.id, v.network, ST_X(v.geom_4326) AS lon, ST_Y(v.geom_4326) AS lat,
               ST_Distance(v.geom_4326::geography, p.g) AS distance_m
        FROM road_vertices v, p
        WHERE (CAST(:network AS text) IS NULL OR v.network = CAST(:network AS text))
          AND (EXISTS (SELECT 1 FROM road_edges e WHERE e.source = v.id AND e.{cost} >= 0)
               OR EXISTS (SELECT 1 FROM road_edges e WHERE e.target = v.id AND e.{reverse} >= 0))
        ORDER BY v.geom_4326::geography <-> p.g, v.network, v.id
        LIMIT 1
"""


def nearest_vertex(conn: Connection, *, lat: float, lon: float, mode: Mode = "walk",
                   network: str | None = None, max_distance_m: float = MAX_SNAP_M) -> StartVertex:
    """The vertex nearest to (lat, lon) (KNN on geography) with an edge leaving it usable by ``mode``.

    With ``network=None`` every imported network is searched and the nearest vertex's network is used (ties,
    e.g. one extract imported under two names, go to the first name).

    Raises
    ------
    RoutingUnavailable
        No network (or not ``network``) is loaded, or it has no road usable by ``mode``.
    InvalidQuery
        The nearest usable vertex is farther than ``max_distance_m`` metres: outside the road network.
    """
    validate_point(lat=lat, lon=lon)
    _check_mode(mode)
    _require_network(conn, network)
    row = conn.execute(_sql(conn, _NEAREST_SQL, mode), {"lat": lat, "lon": lon, "network": network}).one_or_none()
    if row is None:
        where = f"network {network!r}" if network else "any imported network"
        raise RoutingUnavailable(f"{where} has no road usable for mode {mode!r}", mode=mode)
    if row.distance_m > max_distance_m:
        raise InvalidQuery(
            f"({lat}, {lon}) is outside the road network: the nearest {mode} vertex of network {row.network!r} "
            f"is {row.distance_m:.0f} m away (more than {max_distance_m:.0f} m)",
            param="lat,lon", distance_m=round(row.distance_m, 1), network=row.network,
        )
    return StartVertex(row.id, row.network, row.lon, row.lat, row.distance_m)


# SQL templates: composed by _sql() (psycopg.sql) with the identifiers of _COST_COLUMNS only; values are bound.
#
# dd(node, agg_cost): vertices reachable from :start within :budget_s seconds on :network. Only edges in the
# box :xmin..:ymax (EPSG:4326) are loaded: see _search_box. The edges query is a string handed to pgRouting:
# the values enter it through format(%L), i.e. quoted by PostgreSQL from bound parameters, never by Python.
_DD_CTE = """
        box AS (SELECT ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326) AS g),
        dd AS (
            SELECT node, agg_cost FROM pgr_drivingDistance(
                format('SELECT id, source, target, {cost} AS cost, {reverse} AS reverse_cost '
                       'FROM road_edges WHERE network = %L AND geom_4326 && %L::geometry',
                       CAST(:network AS text), (SELECT g FROM box)),
                CAST(:start AS bigint), CAST(:budget_s AS float8), {directed})
        )"""

# Where the start vertex is and the fastest speed (m/s) of any edge of the network for the mode.
_BOX_SQL = """
    SELECT ST_X(v.geom_4326) AS lon, ST_Y(v.geom_4326) AS lat,
           (SELECT GREATEST(max(e.length_m / e.{cost}) FILTER (WHERE e.{cost} > 0),
                            max(e.length_m / e.{reverse}) FILTER (WHERE e.{reverse} > 0))
            FROM road_edges e WHERE e.network = v.network) AS max_speed_mps
    FROM road_vertices v WHERE v.id = :start AND v.network = :network
"""

_REACHABLE_SQL = "WITH {dd} SELECT node, agg_cost FROM dd"

# Each edge with a reached end is covered from that end for the fraction of its cost that the remaining
# budget pays for (travel time is uniform along an edge); the two ends' pieces meet when the fractions sum to
# 1. Fractions are taken along the EPSG:5179 line so that they are fractions of metres, not of degrees.
_CATCHMENT_SQL = """
    WITH {dd},
        reach AS (
            SELECT ST_Transform(e.geom_4326, 5179) AS g,
                   CASE WHEN s.node IS NULL OR e.{cost} < 0 THEN 0.0
                        WHEN e.{cost} = 0 THEN 1.0
                        ELSE LEAST(1.0, (:budget_s - s.agg_cost) / e.{cost}) END AS f_src,
                   CASE WHEN t.node IS NULL OR e.{reverse} < 0 THEN 0.0
                        WHEN e.{reverse} = 0 THEN 1.0
                        ELSE LEAST(1.0, (:budget_s - t.agg_cost) / e.{reverse}) END AS f_tgt
            FROM road_edges e
            LEFT JOIN dd s ON s.node = e.source
            LEFT JOIN dd t ON t.node = e.target
            WHERE e.network = CAST(:network AS text) AND e.geom_4326 && (SELECT g FROM box)
              AND (s.node IS NOT NULL OR t.node IS NOT NULL)
        ),
        pieces AS (
            SELECT g FROM reach WHERE f_src + f_tgt >= 1
            UNION ALL
            SELECT ST_LineSubstring(g, 0, f_src) FROM reach WHERE f_src + f_tgt < 1 AND f_src > 0
            UNION ALL
            SELECT ST_LineSubstring(g, 1 - f_tgt, 1) FROM reach WHERE f_src + f_tgt < 1 AND f_tgt > 0
        ),
        -- A union of one buffer per piece (GEOS cascaded union) is several times faster than one buffer of the
        -- collected pieces; the start vertex is always in, even when no edge is reached.
        shape AS (
            SELECT ST_Union(ST_Buffer(g, :buffer_m)) AS g5179
            FROM (SELECT g FROM pieces
                  UNION ALL
                  SELECT ST_Transform(v.geom_4326, 5179) FROM road_vertices v WHERE v.id = CAST(:start AS bigint)) parts
        ),
        out AS (SELECT ST_ForcePolygonCCW(ST_Transform(g5179, 4326)) AS g4326 FROM shape)
        SELECT ST_AsGeoJSON(g4326, 7) AS geojson,
               ST_Area(g4326::geography) / 1e6 AS area_km2,
               (SELECT count(*) FROM dd) AS reached_vertices,
               (SELECT COALESCE(sum(ST_Length(g)), 0) FROM pieces) / 1000.0 AS reached_length_km
        FROM out
"""


def _sql(conn: Connection, template: str, mode: str) -> TextClause:
    """``template`` composed with ``psycopg.sql``: the cost columns of ``mode`` as quoted identifiers, its
    direction and the ``dd`` CTE (constants, never request data); values stay bound parameters."""
    cost, reverse = (sql.Identifier(column) for column in _COST_COLUMNS[mode])
    directed = sql.SQL("true" if _DIRECTED[mode] else "false")
    dd = sql.SQL(_DD_CTE).format(cost=cost, reverse=reverse, directed=directed)
    query = sql.SQL(template).format(dd=dd, cost=cost, reverse=reverse)
    return text(query.as_string(conn.connection.driver_connection))


def _search_box(conn: Connection, *, network: str, mode: str, vertex_id: int, seconds: float) -> dict[str, float]:
    """Bounds (EPSG:4326 degrees) of every place reachable from the vertex within ``seconds``.

    Nothing reachable is farther in a straight line than the network's fastest edge speed times the budget, so
    loading only the edges touching this box gives pgRouting the same answer as the whole network, at the cost
    of a city block instead of a city for a walk.
    """
    row = conn.execute(_sql(conn, _BOX_SQL, mode), {"start": vertex_id, "network": network}).one_or_none()
    if row is None:
        raise InvalidQuery(f"vertex {vertex_id} is not in network {network!r}", param="vertex_id")
    # 1% and 10 m of slack over the bound; degrees per metre taken where they are largest (the box's pole side).
    radius_m = (row.max_speed_mps or 0.0) * seconds * 1.01 + 10.0
    dlat = radius_m / 110_000.0
    dlon = radius_m / (111_000.0 * max(math.cos(math.radians(min(abs(row.lat) + dlat, 89.0))), 0.01))
    return {"xmin": row.lon - dlon, "ymin": row.lat - dlat, "xmax": row.lon + dlon, "ymax": row.lat + dlat}


def reachable_vertices(conn: Connection, *, vertex_id: int, seconds: float, mode: Mode,
                       network: str) -> dict[int, float]:
    """Vertex id -> least travel time (s) from ``vertex_id`` for every vertex reachable within ``seconds``."""
    _check_mode(mode)
    _require_network(conn, network)
    box = _search_box(conn, network=network, mode=mode, vertex_id=vertex_id, seconds=seconds)
    rows = conn.execute(_sql(conn, _REACHABLE_SQL, mode),
                        {"network": network, "start": vertex_id, "budget_s": seconds, **box})
    return {int(node): float(agg) for node, agg in rows}


def isochrone(conn: Connection, *, lat: float, lon: float, minutes: float, mode: Mode, settings: Settings,
              network: str | None = None, buffer_m: float = DEFAULT_BUFFER_M,
              filters: FacilityFilters | None = None, facility_limit: int | None = None) -> Isochrone:
    """Area reachable from (lat, lon) within ``minutes`` walking (4.8 km/h) or driving, and the centres in it.

    Parameters
    ----------
    conn
        Connection; read-only.
    lat, lon
        Origin in EPSG:4326 degrees, snapped to the nearest vertex with a usable edge (at most 500 m away);
        the walk from the point to that vertex is not counted.
    minutes
        Travel time budget, 0 < minutes <= 60.
    mode
        ``"walk"`` (undirected, 4.8 km/h, motorways/trunk roads excluded) or ``"drive"`` (directed: one-way
        streets; speed from ``maxspeed`` or the road class, free flow).
    network
        Road network name; None = the network of the nearest vertex among all imported ones.
    buffer_m
        Metres claimed on each side of every reached stretch of road (buffer in EPSG:5179).
    filters
        Centre filters of ``geo.search`` (default: operating centres); ``facility_limit`` caps the list.

    Returns
    -------
    Isochrone
        Polygon in GeoJSON (EPSG:4326), its geodesic area in km², and the centres inside.

    Raises
    ------
    InvalidQuery
        Bad coordinates, minutes, mode or buffer, or a point outside the road network.
    RoutingUnavailable
        The network has not been imported.
    """
    validate_point(lat=lat, lon=lon)
    _check_mode(mode)
    network = clean_text(network, param="network")
    if not (math.isfinite(minutes) and 0 < minutes <= MAX_MINUTES):
        raise InvalidQuery(f"minutes must be greater than 0 and at most {MAX_MINUTES:.0f} (got {minutes})",
                           param="minutes")
    if not (math.isfinite(buffer_m) and 0 < buffer_m <= 500):
        raise InvalidQuery(f"buffer_m must be greater than 0 and at most 500 m (got {buffer_m})", param="buffer_m")
    start = nearest_vertex(conn, lat=lat, lon=lon, mode=mode, network=network)
    budget_s = minutes * 60.0
    box = _search_box(conn, network=start.network, mode=mode, vertex_id=start.id, seconds=budget_s)
    row = conn.execute(_sql(conn, _CATCHMENT_SQL, mode), {
        "network": start.network, "start": start.id, "budget_s": budget_s, "buffer_m": buffer_m, **box,
    }).one()
    facilities = within_geometry_search(conn, settings=settings, count="exact", geometry_4326=row.geojson,
                                        lat=lat, lon=lon, filters=filters,
                                        limit=facility_limit or settings.search.max_page_limit)
    return Isochrone(
        network=start.network, mode=mode, minutes=minutes, origin_lon=lon, origin_lat=lat, start=start,
        buffer_m=buffer_m, area_km2=float(row.area_km2), reached_vertices=int(row.reached_vertices),
        reached_length_km=float(row.reached_length_km), geometry_4326=json.loads(row.geojson),
        facilities_page=facilities,
    )
