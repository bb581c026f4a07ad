"""OSM road networks for pgRouting: ``import_osm_network(engine, path, network=...)``.

Reads an OSM extract (XML ``.osm``, ``.osm.pbf``, ``.osm.bz2``/``.gz``) with pyosmium, keeps the ways tagged
``highway=*`` that are usable on foot or by car, splits them at every node shared with another way (or used
twice by the same way) so that junctions become graph vertices, and writes ``road_vertices`` and
``road_edges`` with per-mode costs in seconds. Everything is parsed before anything is written, and the old
network of the same name is replaced in the same transaction (``geo.ingest.run.import_run``). The isochrone
queries over the network live in ``geo.isochrones``.

Why pyosmium rather than ``xml.etree.iterparse``: the files a deployment would really load are Geofabrik
``.osm.pbf`` extracts (Seoul/Korea), which only libosmium reads; it also keeps node locations for ways in a
C++ index, so a whole-country file streams in seconds without Python dictionaries of every node. The tests
parse the XML independently with ``xml.etree``, so the two readers check each other.

Simplifications: driving is free flow at the speed limit (``maxspeed``) or the road class' default, with no
turn restrictions or junction delays.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import osmium
from pyproj import Geod
from sqlalchemy import Connection, Engine, insert, text

from geo.errors import ImportFailed
from geo.ingest.csvio import file_sha256
from geo.ingest.run import DEFAULT_LIMITS, ImportLimits, import_run
from geo.models.facilities import RoadEdge, RoadVertex

WALK_SPEED_MPS = 4.8 / 3.6
"""Walking speed (4.8 km/h), also the speed a parent pushes a pram at."""


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


def import_osm_network(engine: Engine | Connection, path: Path | str, *, network: str, progress: bool = False,
                       limits: ImportLimits = DEFAULT_LIMITS) -> NetworkImport:
    """Import the roads of an OSM extract as the pgRouting network ``network``, replacing any previous one.

    Parameters
    ----------
    engine
        Database engine (one transaction), or a connection whose transaction the caller commits.
    path
        OSM XML (``.osm``), PBF, or bz2/gzip-compressed XML; the format is read from the content.
    network
        Name of the network (the CLI default is the file stem). Re-importing a name replaces it atomically.
    progress
        Show the steps on stderr.
    limits
        Report bounds (``geo.ingest.run.ImportLimits``).

    Returns
    -------
    NetworkImport
        Counts of ways, edges and vertices written; edge lengths are geodesic metres (WGS84).

    Raises
    ------
    ImportFailed
        The file is not OSM data or holds no usable road; nothing is written.
    ImportRunning
        Another import is running.
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

    with import_run(engine, kind="osm_network", source_name=f"{network}:{path.name}", sha256=file_sha256(path),
                    limits=limits, progress=progress) as run:
        conn = run.conn
        run.bar.step(f"writing network {network}")
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
        # The run records ways read, edges written and highway ways that are not roads.
        run.result.rows_read, run.result.inserted, run.result.skipped = result.ways_read, result.edges, skipped
        result.import_run_id = run.run_id
    result.seconds = time.perf_counter() - started
    return result
