"""Walking and driving catchments (isochrones) on an OSM road network with pgRouting.

Two halves:

``import_osm_network(engine, path, network=...)``
    reads an OSM extract (XML ``.osm``, ``.osm.pbf``, ``.osm.bz2``/``.gz``) with pyosmium, keeps the ways tagged
    ``highway=*`` that are usable on foot or by car, splits them at every node shared with another way (or used
    twice by the same way) so that junctions become graph vertices, and writes ``road_vertices`` and
    ``road_edges`` with per-mode costs in seconds. Everything is parsed before anything is written, and the
    old network of the same name is replaced in the same transaction.

``isochrone(conn, lat=..., lon=..., minutes=..., mode=...)``
    snaps the point to the nearest usable vertex, runs ``pgr_drivingDistance`` and builds the catchment polygon
    by buffering the reached parts of the network (whole edges plus the reached fraction of partly reached
    ones) in EPSG:5179, then lists the operating centres inside it.

Why pyosmium rather than ``xml.etree.iterparse``: the files a deployment would really load are Geofabrik
``.osm.pbf`` extracts (Seoul/Korea), which only libosmium reads; it also keeps node locations for ways in a
C++ index, so a whole-country file streams in seconds without Python dictionaries of every node. The tests
parse the XML independently with ``xml.etree``, so the two readers check each other.

Why a buffered network rather than a concave hull: a hull of reached vertices bridges rivers, rail yards and
expressways that the network does not cross, and it claims whole blocks behind a single reached corner; the
buffer (``buffer_m``, default 50 m: the depth of a typical building lot fronting a Seoul street) claims only
what is next to a reachable road. It is only as good as the network: the Overpass extracts in
``../shared/data/osm`` hold roads down to ``residential`` but no footways or complex-internal service roads,
so centres deep inside apartment complexes (Jamsil: median 175 m from the nearest road of the extract) fall
outside a 50 m band; a full OSM extract (Geofabrik ``.osm.pbf``) or a larger ``buffer_m`` closes that gap.

Simplifications: the origin is snapped to a vertex and the walk to it is not counted; driving is free flow at
the speed limit (``maxspeed``) or the road class' default, with no turn restrictions or junction delays.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import osmium
from pyproj import Geod
from sqlalchemy import Connection, Engine, insert, text

from geo.errors import ImportFailed, InvalidQuery, RoutingUnavailable
from geo.ingest.csvio import file_sha256
from geo.models import ImportRun, RoadEdge, RoadVertex
from geo.search import FacilityFilters, FacilityHit, SearchPage, within_geometry_search
from geo.settings import Settings
from geo.validation import clean_text, validate_point

Mode = Literal["walk", "drive"]

WALK_SPEED_MPS = 4.8 / 3.6
"""Walking speed (4.8 km/h), also the speed a parent pushes a pram at."""

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


@dataclass(frozen=True)
class HighwayClass:
    """How a ``highway=*`` value is used: on foot, by car, and the default car speed (km/h)."""

    walkable: bool
    drivable: bool
    speed_kmh: float


# Road classes kept by the importer; any other highway value (construction, proposed, platform, bus_stop,
# raceway, ...) is not a road and is skipped. Motorways and trunk roads (in Seoul: the urban expressways such as
# Olympic-daero and their ramps) are closed to pedestrians; links drive slower than their parent road.
HIGHWAY_CLASSES: dict[str, HighwayClass] = {
    "motorway": HighwayClass(False, True, 80.0),
    "motorway_link": HighwayClass(False, True, 50.0),
    "trunk": HighwayClass(False, True, 60.0),
    "trunk_link": HighwayClass(False, True, 40.0),
    "primary": HighwayClass(True, True, 50.0),
    "primary_link": HighwayClass(True, True, 40.0),
    "secondary": HighwayClass(True, True, 40.0),
    "secondary_link": HighwayClass(True, True, 30.0),
    "tertiary": HighwayClass(True, True, 30.0),
    "tertiary_link": HighwayClass(True, True, 25.0),
    "unclassified": HighwayClass(True, True, 20.0),
    "residential": HighwayClass(True, True, 20.0),
    "road": HighwayClass(True, True, 20.0),
    "living_street": HighwayClass(True, True, 10.0),
    "service": HighwayClass(True, True, 15.0),
    "pedestrian": HighwayClass(True, False, 0.0),
    "footway": HighwayClass(True, False, 0.0),
    "path": HighwayClass(True, False, 0.0),
    "steps": HighwayClass(True, False, 0.0),
    "track": HighwayClass(True, False, 0.0),
    "cycleway": HighwayClass(True, False, 0.0),
}

# ``maxspeed`` zone values (km/h); Korea: 안전속도 5030 (urban 50, residential 30).
_MAXSPEED_ZONES = {"kr:urban": 50.0, "kr:rural": 80.0, "kr:motorway": 100.0, "kr:residential": 30.0,
                   "kr:living_street": 20.0, "walk": 6.0}
_MAXSPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)
_NO = {"no", "private"}
_YES_FOOT = {"yes", "designated", "permissive"}
_GEOD = Geod(ellps="WGS84")


# --------------------------------------------------------------------------------------------- tag rules


def parse_maxspeed(value: str | None) -> float | None:
    """Speed limit in km/h from an OSM ``maxspeed`` value (``"50"``, ``"30 mph"``, ``"KR:urban"``), else None.

    Several values (``"50;30"``) give the lowest.
    """
    if not value:
        return None
    speeds = []
    for part in value.split(";"):
        part = part.strip().lower()
        if part in _MAXSPEED_ZONES:
            speeds.append(_MAXSPEED_ZONES[part])
            continue
        match = _MAXSPEED_RE.match(part)
        if match:
            speed = float(match.group(1))
            if (match.group(2) or "").lower() == "mph":
                speed *= 1.609344
            if speed > 0:
                speeds.append(speed)
    return min(speeds) if speeds else None


def drive_directions(tags: dict[str, str]) -> tuple[bool, bool]:
    """(forward, backward) allowed for cars along the way's node order.

    ``oneway=yes|true|1`` forward only, ``-1|reverse`` backward only, ``no`` both; without a tag, roundabouts
    and motorways are one-way (OSM's implied default) and everything else two-way.
    """
    oneway = (tags.get("oneway") or "").strip().lower()
    if oneway in {"yes", "true", "1"}:
        return True, False
    if oneway in {"-1", "reverse"}:
        return False, True
    if oneway in {"no", "false", "0"}:
        return True, True
    if tags.get("junction") in {"roundabout", "circular"} or tags.get("highway") == "motorway":
        return True, False
    return True, True


def way_usage(tags: dict[str, str]) -> tuple[bool, bool, float] | None:
    """(walkable, drivable, car speed km/h) of a way, or None when it is not a usable road.

    Class defaults from ``HIGHWAY_CLASSES``; ``foot=yes|designated|permissive`` opens a way to pedestrians,
    ``foot=no|private`` and ``access=no`` close it; ``access``/``vehicle``/``motor_vehicle``/``motorcar`` =
    ``no|private`` close it to cars; ``area=yes`` (a plaza outline, not a line) is skipped.
    """
    cls = HIGHWAY_CLASSES.get(tags.get("highway", ""))
    if cls is None or tags.get("area") == "yes":
        return None
    access = tags.get("access")
    foot = tags.get("foot")
    walkable = cls.walkable
    if foot in _YES_FOOT:
        walkable = True
    elif foot in _NO or access == "no":
        walkable = False
    drivable = cls.drivable and not any(
        tags.get(key) in _NO for key in ("access", "vehicle", "motor_vehicle", "motorcar")
    )
    if not (walkable or drivable):
        return None
    return walkable, drivable, parse_maxspeed(tags.get("maxspeed")) or cls.speed_kmh


# --------------------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class _Segment:
    way_id: int
    highway: str
    node_ids: tuple[int, ...]
    coords: tuple[tuple[float, float], ...]  # (lon, lat) EPSG:4326
    walkable: bool
    drivable: bool
    forward: bool
    backward: bool
    speed_kmh: float


@dataclass
class _Way:
    way_id: int
    highway: str
    walkable: bool
    drivable: bool
    forward: bool
    backward: bool
    speed_kmh: float
    nodes: list[tuple[int, float, float] | None]  # (osm node id, lon, lat); None where the extract lacks it


@dataclass
class NetworkImport:
    """Outcome of ``import_osm_network``: counts of what was written, for the CLI and the tests."""

    network: str
    source_name: str
    ways_read: int = 0
    ways_skipped: int = 0
    edges: int = 0
    vertices: int = 0
    length_km: float = 0.0
    walkable_edges: int = 0
    drivable_edges: int = 0
    oneway_edges: int = 0
    replaced_edges: int = 0
    missing_nodes: int = 0
    seconds: float = 0.0
    import_run_id: int | None = None
    by_highway: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the CLI."""
        replaced = f", replaced {self.replaced_edges} edges" if self.replaced_edges else ""
        missing = f", {self.missing_nodes} node refs without coordinates" if self.missing_nodes else ""
        return (f"network {self.network!r} from {self.source_name}: {self.ways_read} road ways "
                f"({self.ways_skipped} skipped) -> {self.edges} edges, {self.vertices} vertices, "
                f"{self.length_km:.1f} km ({self.walkable_edges} walkable, {self.drivable_edges} drivable, "
                f"{self.oneway_edges} one-way){replaced}{missing} in {self.seconds:.2f} s")


def _osm_file(path: Path) -> osmium.io.File:
    """An osmium input for ``path``, the format sniffed from the content (names such as ``x.txt`` happen)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc}", path=str(path)) from exc
    if not head:
        raise ImportFailed(f"{path.name} is empty, not an OSM extract", path=str(path))
    if head.startswith(b"BZh"):
        fmt = "osm.bz2"
    elif head.startswith(b"\x1f\x8b"):
        fmt = "osm.gz"
    elif b"OSMHeader" in head:
        fmt = "pbf"
    elif head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        fmt = "osm"
    else:
        raise ImportFailed(f"{path.name} is not an OSM extract (expected OSM XML, .osm.pbf, .osm.bz2 or .osm.gz)",
                           path=str(path))
    return osmium.io.File(str(path), fmt)


def _read_ways(path: Path) -> tuple[list[_Way], int, int]:
    """Road ways of the extract with node locations; also the number of highway ways skipped and of node
    references without coordinates. Raises ``ImportFailed`` on unreadable input."""
    ways: list[_Way] = []
    skipped = 0
    missing = 0
    processor = (osmium.FileProcessor(_osm_file(path), osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations()
                 .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                 .with_filter(osmium.filter.KeyFilter("highway")))
    try:
        for way in processor:
            assert isinstance(way, osmium.osm.Way)  # the entity filter lets only ways through
            tags = {tag.k: tag.v for tag in way.tags}
            usage = way_usage(tags)
            if usage is None:
                skipped += 1
                continue
            walkable, drivable, speed_kmh = usage
            forward, backward = drive_directions(tags)
            nodes: list[tuple[int, float, float] | None] = []
            for ref in way.nodes:
                if ref.location.valid():
                    nodes.append((ref.ref, ref.location.lon, ref.location.lat))
                else:
                    nodes.append(None)
                    missing += 1
            ways.append(_Way(way.id, tags["highway"], walkable, drivable, forward, backward, speed_kmh, nodes))
    except RuntimeError as exc:  # libosmium reports malformed input as RuntimeError
        raise ImportFailed(f"{path.name} could not be read as OSM data: {exc}", path=str(path)) from exc
    return ways, skipped, missing


def split_ways(ways: Iterable[_Way]) -> Iterator[_Segment]:
    """Cut every way at its junction nodes (used by another way or twice by the same way) and at its ends.

    Node references without coordinates (clipped extracts) break the way: each run of located nodes becomes
    a piece of its own.
    """
    ways = list(ways)
    uses: dict[int, int] = {}
    for way in ways:
        for node in way.nodes:
            if node is not None:
                uses[node[0]] = uses.get(node[0], 0) + 1
    for way in ways:
        runs: list[list[tuple[int, float, float]]] = [[]]
        for node in way.nodes:
            if node is None:
                runs.append([])
            else:
                runs[-1].append(node)
        for run in runs:
            if len(run) < 2:
                continue
            start = 0
            for i in range(1, len(run)):
                if i == len(run) - 1 or uses[run[i][0]] > 1:
                    piece = run[start:i + 1]
                    yield _Segment(way.way_id, way.highway, tuple(n[0] for n in piece),
                                   tuple((n[1], n[2]) for n in piece), way.walkable, way.drivable,
                                   way.forward, way.backward, way.speed_kmh)
                    start = i


def _edge_row(network: str, seg: _Segment, source: int, target: int) -> dict[str, Any]:
    lons = [c[0] for c in seg.coords]
    lats = [c[1] for c in seg.coords]
    length_m = float(_GEOD.line_length(lons, lats))
    walk_s = length_m / WALK_SPEED_MPS if seg.walkable else -1.0
    drive_s = length_m / (seg.speed_kmh / 3.6) if seg.drivable else -1.0
    wkt = "LINESTRING(" + ",".join(f"{lon:.7f} {lat:.7f}" for lon, lat in seg.coords) + ")"
    return {
        "network": network,
        "osm_way_id": seg.way_id,
        "source": source,
        "target": target,
        "highway": seg.highway,
        "length_m": length_m,
        "walk_cost_s": walk_s,
        "walk_reverse_cost_s": walk_s,
        "drive_cost_s": drive_s if seg.forward else -1.0,
        "drive_reverse_cost_s": drive_s if seg.backward else -1.0,
        "geom_4326": f"SRID=4326;{wkt}",
    }


def import_osm_network(engine: Engine, path: Path | str, *, network: str) -> NetworkImport:
    """Import the roads of an OSM extract as the pgRouting network ``network``, replacing any previous one.

    Parameters
    ----------
    engine
        Database engine; the import runs in one transaction.
    path
        OSM XML (``.osm``), PBF, or bz2/gzip-compressed XML; the format is read from the content.
    network
        Name of the network (the CLI default is the file stem). Re-importing a name replaces it atomically.

    Returns
    -------
    NetworkImport
        Counts of ways, edges and vertices written; edge lengths are geodesic metres (WGS84).

    Raises
    ------
    ImportFailed
        The file is not OSM data or holds no usable road; nothing is written.
    """
    started = time.perf_counter()
    path = Path(path)
    network = (network or "").strip()
    if not network:
        raise ImportFailed("a network name is required")
    ways, skipped, missing = _read_ways(path)
    segments = list(split_ways(ways))
    if not segments:
        raise ImportFailed(f"{path.name} holds no road usable on foot or by car (no highway=* ways with "
                           "located nodes)", path=str(path))
    result = NetworkImport(network=network, source_name=path.name, ways_read=len(ways), ways_skipped=skipped,
                           missing_nodes=missing)
    vertex_coords: dict[int, tuple[float, float]] = {}
    for seg in segments:
        vertex_coords.setdefault(seg.node_ids[0], seg.coords[0])
        vertex_coords.setdefault(seg.node_ids[-1], seg.coords[-1])

    sha256 = file_sha256(path)
    with engine.begin() as conn:
        # Concurrent imports of the same name queue up instead of interleaving their deletes and inserts.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('dolbom.road_network:' || :network))"),
                     {"network": network})
        result.replaced_edges = conn.execute(text("DELETE FROM road_edges WHERE network = :network"),
                                             {"network": network}).rowcount
        conn.execute(text("DELETE FROM road_vertices WHERE network = :network"), {"network": network})
        conn.execute(insert(RoadVertex), [
            {"network": network, "osm_node_id": node_id, "geom_4326": f"SRID=4326;POINT({lon:.7f} {lat:.7f})"}
            for node_id, (lon, lat) in vertex_coords.items()
        ])
        vertex_ids: dict[int, int] = {row.osm_node_id: row.id for row in conn.execute(
            text("SELECT osm_node_id, id FROM road_vertices WHERE network = :network"), {"network": network})}
        rows = [_edge_row(network, seg, vertex_ids[seg.node_ids[0]], vertex_ids[seg.node_ids[-1]])
                for seg in segments]
        conn.execute(insert(RoadEdge), rows)
        result.edges = len(rows)
        result.vertices = len(vertex_coords)
        result.length_km = sum(r["length_m"] for r in rows) / 1000.0
        result.walkable_edges = sum(1 for r in rows if r["walk_cost_s"] >= 0)
        result.drivable_edges = sum(1 for r in rows if r["drive_cost_s"] >= 0 or r["drive_reverse_cost_s"] >= 0)
        result.oneway_edges = sum(1 for r in rows if (r["drive_cost_s"] >= 0) != (r["drive_reverse_cost_s"] >= 0))
        for r in rows:
            result.by_highway[r["highway"]] = result.by_highway.get(r["highway"], 0) + 1
        result.import_run_id = conn.execute(
            insert(ImportRun).returning(ImportRun.id),
            {"kind": "osm_network", "source_name": f"{network}:{path.name}", "sha256": sha256,
             "rows_read": result.ways_read, "inserted": result.edges, "updated": 0, "unchanged": 0,
             "skipped": skipped, "flagged": 0, "report": []},
        ).scalar_one()
    result.seconds = time.perf_counter() - started
    return result


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
    cost, reverse = _check_mode(mode)
    _require_network(conn, network)
    sql = _NEAREST_SQL.format(cost=cost, reverse=reverse)
    row = conn.execute(text(sql), {"lat": lat, "lon": lon, "network": network}).one_or_none()
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


# SQL templates: filled by _sql() with the identifiers of _COST_COLUMNS only; every value is bound.
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


def _sql(template: str, mode: str) -> str:
    """``template`` with the cost columns and direction of ``mode`` (constants, never request data)."""
    cost, reverse = _COST_COLUMNS[mode]
    directed = "true" if _DIRECTED[mode] else "false"
    dd = _DD_CTE.format(cost=cost, reverse=reverse, directed=directed)
    return template.format(dd=dd, cost=cost, reverse=reverse)


def _search_box(conn: Connection, *, network: str, mode: str, vertex_id: int, seconds: float) -> dict[str, float]:
    """Bounds (EPSG:4326 degrees) of every place reachable from the vertex within ``seconds``.

    Nothing reachable is farther in a straight line than the network's fastest edge speed times the budget, so
    loading only the edges touching this box gives pgRouting the same answer as the whole network, at the cost
    of a city block instead of a city for a walk.
    """
    cost, reverse = _COST_COLUMNS[mode]
    row = conn.execute(text(_BOX_SQL.format(cost=cost, reverse=reverse)),
                       {"start": vertex_id, "network": network}).one_or_none()
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
    rows = conn.execute(text(_sql(_REACHABLE_SQL, mode)),
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
    row = conn.execute(text(_sql(_CATCHMENT_SQL, mode)), {
        "network": start.network, "start": start.id, "budget_s": budget_s, "buffer_m": buffer_m, **box,
    }).one()
    facilities = within_geometry_search(conn, settings=settings, count="exact", geometry_4326=row.geojson,
                                        lat=lat, lon=lon, filters=filters,
                                        limit=facility_limit or settings.max_page_limit)
    return Isochrone(
        network=start.network, mode=mode, minutes=minutes, origin_lon=lon, origin_lat=lat, start=start,
        buffer_m=buffer_m, area_km2=float(row.area_km2), reached_vertices=int(row.reached_vertices),
        reached_length_km=float(row.reached_length_km), geometry_4326=json.loads(row.geojson),
        facilities_page=facilities,
    )
