"""OSM road networks and isochrones on the real Jamsil and Heukseok extracts.

The importer (pyosmium) is checked against an independent parse of the same XML with ``xml.etree``;
reachability against a Dijkstra written here over the imported edges; the polygon against one built here
with shapely/pyproj; the centres inside against shapely point-in-polygon.
"""

from __future__ import annotations

import heapq
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Point, shape
from shapely.ops import substring
from sqlalchemy import Connection, Engine, text

from geo.errors import ImportFailed, InvalidQuery, RoutingUnavailable
from geo.ingest.osm import WALK_SPEED_MPS, drive_directions, import_osm_network, parse_maxspeed
from geo.isochrones import isochrone, nearest_vertex, reachable_vertices
from geo.search import FacilityFilters
from geo.settings import Settings
from tests.dbutil import rolled_back

JAMSIL = "seoul_songpa_jamsil_asanH_overpass_20241101_norelations.osm"
HEUKSEOK = "seoul_dongjak_heukseok_cauH_overpass_20241118_norelations.osm"
# Near Jamsil station (송파구), inside the Jamsil extract.
JAMSIL_LAT, JAMSIL_LON = 37.5133, 127.1000
GEOD = Geod(ellps="WGS84")
TO_5179 = Transformer.from_crs(4326, 5179, always_xy=True)
# Every highway=* value on a way in the two extracts is a road class.
ROAD_CLASSES = {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
                "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "service"}


def to_5179(geom):
    """A shapely geometry from EPSG:4326 (lon, lat) to EPSG:5179 metres."""
    return shapely.transform(geom, lambda xy: np.column_stack(TO_5179.transform(xy[:, 0], xy[:, 1])))


# ------------------------------------------------------------------------------------------ independent parse


@dataclass
class XmlNetwork:
    """What the importer should produce, computed from the XML with ElementTree only."""

    vertices: set[int]
    segments: Counter  # (way id, first node, last node) -> count
    length_m: float
    oneway_forward_ways: set[int]
    oneway_backward_ways: set[int]
    no_walk_ways: set[int]
    maxspeed_kmh: dict[int, float]
    highway_by_way: dict[int, str]
    ways: int


def parse_xml(path: Path) -> XmlNetwork:
    root = ET.parse(path).getroot()
    lonlat = {int(n.get("id")): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    ways = []
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if "highway" in tags and tags.get("area") != "yes":
            assert tags["highway"] in ROAD_CLASSES, tags["highway"]
            ways.append((int(way.get("id")), tags, [int(nd.get("ref")) for nd in way.iter("nd")]))
    used = Counter(ref for _, _, refs in ways for ref in refs)
    vertices: set[int] = set()
    segments: Counter = Counter()
    length_m = 0.0
    for way_id, _, refs in ways:
        cuts = [0] + [i for i in range(1, len(refs) - 1) if used[refs[i]] > 1] + [len(refs) - 1]
        for a, b in zip(cuts, cuts[1:], strict=False):
            segments[(way_id, refs[a], refs[b])] += 1
        vertices.update(refs[i] for i in cuts)
        lons, lats = zip(*(lonlat[r] for r in refs), strict=True)
        length_m += GEOD.line_length(lons, lats)
    return XmlNetwork(
        vertices=vertices, segments=segments, length_m=length_m,
        oneway_forward_ways={w for w, t, _ in ways if t.get("oneway") == "yes"},
        oneway_backward_ways={w for w, t, _ in ways if t.get("oneway") == "-1"},
        no_walk_ways={w for w, t, _ in ways
                      if t["highway"] in {"motorway", "motorway_link", "trunk", "trunk_link"}
                      or t.get("foot") == "no"},
        maxspeed_kmh={w: float(t["maxspeed"]) for w, t, _ in ways if t.get("maxspeed", "").isdigit()},
        highway_by_way={w: t["highway"] for w, t, _ in ways},
        ways=len(ways),
    )


# ------------------------------------------------------------------------------------------ fixtures


S = Settings(DATABASE_URL=None)

@pytest.fixture(scope="module")
def osm_dir(shared_data: Path) -> Path:
    return shared_data / "osm"


@pytest.fixture(scope="module")
def routing_engine(make_database, osm_dir: Path) -> Engine:
    """A throw-away database with both extracts imported (networks ``jamsil`` and ``heukseok``)."""
    engine = make_database("routing")
    import_osm_network(engine, osm_dir / JAMSIL, network="jamsil")
    import_osm_network(engine, osm_dir / HEUKSEOK, network="heukseok")
    return engine


@pytest.fixture()
def rconn(routing_engine: Engine):
    """A rolled-back connection on the routing database."""
    with rolled_back(routing_engine) as conn:
        yield conn


def edges_of(conn: Connection, network: str) -> list:
    return conn.execute(text("""
        SELECT id, osm_way_id, source, target, highway, length_m, walk_cost_s, walk_reverse_cost_s,
               drive_cost_s, drive_reverse_cost_s, ST_AsText(geom_4326) AS wkt
        FROM road_edges WHERE network = :n"""), {"n": network}).all()


def dijkstra(edges: list, start: int, budget_s: float, mode: str) -> dict[int, float]:
    """Least travel times from ``start`` (directed for both modes: walking edges have equal costs)."""
    adj: dict[int, list[tuple[int, float]]] = {}
    for e in edges:
        forward, backward = ((e.walk_cost_s, e.walk_reverse_cost_s) if mode == "walk"
                             else (e.drive_cost_s, e.drive_reverse_cost_s))
        if forward >= 0:
            adj.setdefault(e.source, []).append((e.target, forward))
        if backward >= 0:
            adj.setdefault(e.target, []).append((e.source, backward))
    best = {start: 0.0}
    queue = [(0.0, start)]
    while queue:
        d, u = heapq.heappop(queue)
        if d > best[u]:
            continue
        for v, w in adj.get(u, []):
            if d + w < best.get(v, math.inf):
                best[v] = d + w
                heapq.heappush(queue, (d + w, v))
    return {v: d for v, d in best.items() if d <= budget_s}


# ------------------------------------------------------------------------------------------ tag rules


def test_maxspeed_and_oneway_rules() -> None:
    assert parse_maxspeed("50") == 50.0
    assert parse_maxspeed("30 mph") == pytest.approx(48.28, abs=0.01)
    assert parse_maxspeed("KR:urban") == 50.0
    assert parse_maxspeed("60;40") == 40.0
    assert parse_maxspeed("signals") is None
    assert drive_directions({"highway": "primary", "oneway": "yes"}) == (True, False)
    assert drive_directions({"highway": "primary", "oneway": "-1"}) == (False, True)
    assert drive_directions({"highway": "primary", "junction": "roundabout"}) == (True, False)
    assert drive_directions({"highway": "primary", "junction": "roundabout", "oneway": "no"}) == (True, True)
    assert drive_directions({"highway": "motorway"}) == (True, False)
    assert drive_directions({"highway": "residential"}) == (True, True)


# ------------------------------------------------------------------------------------------ import


@pytest.mark.parametrize("name, network", [(JAMSIL, "jamsil"), (HEUKSEOK, "heukseok")])
def test_import_matches_independent_parse(rconn: Connection, osm_dir: Path, name: str, network: str) -> None:
    expected = parse_xml(osm_dir / name)
    edges = edges_of(rconn, network)
    vertices = {r.id: r.osm_node_id for r in rconn.execute(
        text("SELECT id, osm_node_id FROM road_vertices WHERE network = :n"), {"n": network})}
    assert set(vertices.values()) == expected.vertices
    assert len(vertices) == len(expected.vertices)
    got = Counter((e.osm_way_id, vertices[e.source], vertices[e.target]) for e in edges)
    assert got == expected.segments
    assert len({e.osm_way_id for e in edges}) == expected.ways
    total = sum(e.length_m for e in edges)
    assert total == pytest.approx(expected.length_m, rel=0.01)
    assert total == pytest.approx(expected.length_m, rel=1e-6)
    # Lengths agree with PostGIS' own geodesic length, edge by edge.
    geodesic = {r.id: r.length_m for r in rconn.execute(
        text("SELECT id, ST_Length(geom_4326::geography) AS length_m FROM road_edges WHERE network = :n"),
        {"n": network})}
    assert all(e.length_m == pytest.approx(geodesic[e.id], rel=1e-4, abs=0.01) for e in edges)
    # Topology: every edge starts at its source vertex and ends at its target vertex.
    mismatched = rconn.execute(text("""
        SELECT count(*) FROM road_edges e
        JOIN road_vertices s ON s.id = e.source JOIN road_vertices t ON t.id = e.target
        WHERE e.network = :n
          AND NOT (ST_Equals(ST_StartPoint(e.geom_4326), s.geom_4326)
                   AND ST_Equals(ST_EndPoint(e.geom_4326), t.geom_4326))"""), {"n": network}).scalar_one()
    assert mismatched == 0


@pytest.mark.parametrize("name, network", [(JAMSIL, "jamsil"), (HEUKSEOK, "heukseok")])
def test_costs_follow_speeds_oneway_and_road_class(rconn: Connection, osm_dir: Path, name: str,
                                                   network: str) -> None:
    expected = parse_xml(osm_dir / name)
    defaults = {"residential": 20.0, "service": 15.0, "primary": 50.0, "secondary": 40.0, "tertiary": 30.0,
                "trunk": 60.0, "unclassified": 20.0}
    oneway_seen = 0
    for e in edges_of(rconn, network):
        if e.osm_way_id in expected.no_walk_ways:
            assert e.walk_cost_s == e.walk_reverse_cost_s == -1
        else:
            assert e.walk_cost_s == e.walk_reverse_cost_s == pytest.approx(e.length_m / (4.8 / 3.6))
        speed = expected.maxspeed_kmh.get(e.osm_way_id) or defaults.get(e.highway)
        drive_s = max(e.drive_cost_s, e.drive_reverse_cost_s)
        if speed is not None:
            assert drive_s == pytest.approx(e.length_m / (speed / 3.6))
        if e.osm_way_id in expected.oneway_forward_ways:
            oneway_seen += 1
            assert e.drive_cost_s >= 0 and e.drive_reverse_cost_s == -1
        elif e.osm_way_id in expected.oneway_backward_ways:
            assert e.drive_cost_s == -1 and e.drive_reverse_cost_s >= 0
        else:
            assert e.drive_cost_s == e.drive_reverse_cost_s >= 0
    assert oneway_seen > 0


def test_reimport_replaces_network(routing_engine: Engine, osm_dir: Path) -> None:
    def counts() -> dict[str, tuple[int, int]]:
        with routing_engine.connect() as conn:
            rows = conn.execute(text("""
                SELECT n.network,
                       (SELECT count(*) FROM road_edges e WHERE e.network = n.network),
                       (SELECT count(*) FROM road_vertices v WHERE v.network = n.network)
                FROM (SELECT DISTINCT network FROM road_edges) n""")).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    before = counts()
    result = import_osm_network(routing_engine, osm_dir / HEUKSEOK, network="heukseok")
    after = counts()
    assert after == before
    assert result.replaced_edges == before["heukseok"][0] == result.edges
    assert (result.edges, result.vertices) == after["heukseok"]
    assert "replaced" in result.summary()


@pytest.mark.parametrize("content, why", [
    (b"code,name\n1,a\n", "csv"),
    (b'<?xml version="1.0"?><gpx><trk/></gpx>', "other xml"),
    (b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="37.5" lon="127.0"/>'
     b'<way id="2"><nd ref="1"/><tag k="highway" v="primary"/>', "truncated"),
    (b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="37.5" lon="127.0"/>'
     b'<node id="2" lat="37.51" lon="127.0"/><node id="3" lat="37.51" lon="127.01"/>'
     b'<way id="9"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/><tag k="building" v="yes"/></way></osm>',
     "buildings only"),
    (b"", "empty"),
])
def test_bad_file_fails_and_writes_nothing(routing_engine: Engine, tmp_path: Path, content: bytes,
                                           why: str) -> None:
    path = tmp_path / "bad.osm"
    path.write_bytes(content)

    def state() -> tuple:
        with routing_engine.connect() as conn:
            return conn.execute(text("""
                SELECT (SELECT count(*) FROM road_edges), (SELECT count(*) FROM road_vertices),
                       (SELECT count(*) FROM import_runs),
                       (SELECT count(*) FROM road_edges WHERE network = 'jamsil')""")).one()

    before = state()
    # The name of an existing network: a failed import must not touch it.
    with pytest.raises(ImportFailed) as err:
        import_osm_network(routing_engine, path, network="jamsil")
    assert "bad.osm" in err.value.detail
    assert state() == before


# ------------------------------------------------------------------------------------------ isochrones


def test_walking_isochrones_grow_monotonically(rconn: Connection) -> None:
    isos = [isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=m, mode="walk") for m in (5, 10, 15)]
    assert all(iso.network == "jamsil" for iso in isos)
    areas = [iso.area_km2 for iso in isos]
    assert 0 < areas[0] < areas[1] < areas[2]
    shapes = [shape(iso.geometry_4326) for iso in isos]
    for small, large in zip(shapes, shapes[1:], strict=False):
        # Up to the polygonal approximation of the buffers' round caps (well under 1 m² here).
        assert small.difference(large).area <= 1e-4 * small.area
    assert shapes[0].contains(Point(isos[0].start.lon, isos[0].start.lat))


def test_walking_reach_is_bounded_and_matches_dijkstra(rconn: Connection) -> None:
    minutes = 10
    budget_s = minutes * 60
    iso = isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=minutes, mode="walk")
    reached = reachable_vertices(rconn, vertex_id=iso.start.id, seconds=budget_s, mode="walk", network="jamsil")
    expected = dijkstra(edges_of(rconn, "jamsil"), iso.start.id, budget_s, "walk")
    assert reached.keys() == expected.keys()
    assert all(reached[v] == pytest.approx(expected[v], abs=1e-6) for v in reached)
    assert iso.reached_vertices == len(reached)
    max_walk_m = budget_s * WALK_SPEED_MPS  # 800 m
    assert max(reached.values()) * WALK_SPEED_MPS <= max_walk_m + 1e-6
    # Every vertex of the polygon lies within the walkable distance (a lower bound of the network distance)
    # plus the buffer of the start vertex, straight line on the spheroid.
    coords = shapely.get_coordinates(shape(iso.geometry_4326))
    _, _, dist_m = GEOD.inv([iso.start.lon] * len(coords), [iso.start.lat] * len(coords),
                            coords[:, 0], coords[:, 1])
    assert max(dist_m) <= max_walk_m + iso.buffer_m + 1.0
    assert max(dist_m) > 0.5 * max_walk_m  # the catchment is not degenerate


def test_polygon_matches_independent_construction(rconn: Connection) -> None:
    """Rebuild the catchment in Python: reached fraction of every edge, buffered in EPSG:5179, unioned."""
    minutes = 7.5
    budget_s = minutes * 60
    iso = isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=minutes, mode="walk")
    edges = edges_of(rconn, "jamsil")
    reached = dijkstra(edges, iso.start.id, budget_s, "walk")
    pieces = []
    for e in edges:
        if e.walk_cost_s < 0:
            continue
        line = to_5179(shapely.from_wkt(e.wkt))
        f_src = min(1.0, (budget_s - reached[e.source]) / e.walk_cost_s) if e.source in reached else 0.0
        f_tgt = min(1.0, (budget_s - reached[e.target]) / e.walk_cost_s) if e.target in reached else 0.0
        if f_src + f_tgt >= 1:
            pieces.append(line)
            continue
        if f_src > 0:
            pieces.append(substring(line, 0, f_src, normalized=True))
        if f_tgt > 0:
            pieces.append(substring(line, 1 - f_tgt, 1, normalized=True))
    start = to_5179(Point(iso.start.lon, iso.start.lat))
    expected = shapely.union_all([p.buffer(iso.buffer_m) for p in pieces] + [start.buffer(iso.buffer_m)])
    got = to_5179(shape(iso.geometry_4326))
    assert got.area == pytest.approx(expected.area, rel=0.01)
    assert got.symmetric_difference(expected).area <= 0.01 * expected.area
    # Reached road length, from the same pieces.
    assert iso.reached_length_km == pytest.approx(sum(p.length for p in pieces) / 1000, rel=1e-3)


def test_driving_respects_oneway(rconn: Connection) -> None:
    edges = edges_of(rconn, "jamsil")
    iso = isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=5, mode="drive")
    reached = reachable_vertices(rconn, vertex_id=iso.start.id, seconds=300, mode="drive", network="jamsil")
    expected = dijkstra(edges, iso.start.id, 300, "drive")
    assert reached.keys() == expected.keys()
    assert all(reached[v] == pytest.approx(expected[v], abs=1e-6) for v in reached)
    # A one-way edge u -> v: v is reached from u over it, u is not reached from v over it (only by a detour).
    asymmetric = 0
    for e in edges:
        if e.drive_cost_s > 0 and e.drive_reverse_cost_s == -1 and e.source != e.target:
            budget = e.drive_cost_s * 1.001
            from_u = reachable_vertices(rconn, vertex_id=e.source, seconds=budget, mode="drive", network="jamsil")
            from_v = reachable_vertices(rconn, vertex_id=e.target, seconds=budget, mode="drive", network="jamsil")
            assert from_u[e.target] <= e.drive_cost_s + 1e-6
            if e.source not in from_v:
                asymmetric += 1
                # On foot the same edge works both ways.
                on_foot = reachable_vertices(rconn, vertex_id=e.target, seconds=e.walk_cost_s * 1.001,
                                             mode="walk", network="jamsil") if e.walk_cost_s >= 0 else {}
                assert e.walk_cost_s < 0 or e.source in on_foot
            if asymmetric >= 5:
                break
    assert asymmetric >= 5
    walk = isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=5, mode="walk")
    assert iso.area_km2 > walk.area_km2


def test_heukseok_network_is_chosen_by_location(rconn: Connection) -> None:
    iso = isochrone(rconn, settings=S, lat=37.5045, lon=126.9530, minutes=10, mode="walk")
    assert iso.network == "heukseok"
    assert iso.start.distance_m < 500
    assert iso.area_km2 > 0.2


def test_centres_inside_equal_point_in_polygon(rconn: Connection) -> None:
    """Synthetic centres on a 50 m grid over Jamsil (rolled back), operating and closed, of two types."""
    rconn.execute(text("""
        INSERT INTO facilities (code, name, facility_type, status, services, geocode_quality, source, geom_4326)
        SELECT 'iso-test-' || i || '-' || j, 'grid ' || i || ',' || j,
               CASE WHEN (i + j) % 3 = 0 THEN 'home' ELSE 'private' END,
               CASE WHEN (i * j) % 5 = 0 THEN 'closed' WHEN i % 7 = 0 THEN 'reopened' ELSE 'active' END,
               CASE WHEN j % 4 = 0 THEN ARRAY['twenty_four_hour'] ELSE ARRAY[]::text[] END, 'source', 'test',
               ST_SetSRID(ST_MakePoint(127.085 + i * 0.00056, 37.500 + j * 0.00045), 4326)
        FROM generate_series(0, 70) i, generate_series(0, 70) j"""))
    points = rconn.execute(text("""
        SELECT id, facility_type, status, services, ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat
        FROM facilities""")).all()
    iso = isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=10, mode="walk")
    polygon = shape(iso.geometry_4326)
    shapely.prepare(polygon)
    inside = {p.id for p in points if p.status in ("active", "reopened") and polygon.intersects(Point(p.lon, p.lat))}
    assert len(inside) > 50
    assert {h.id for h in iso.facilities} == inside
    assert iso.facilities_matched == len(inside)
    distances = [h.distance_m for h in iso.facilities]
    assert distances == sorted(distances)
    # The search filters apply: home centres offering 24h care only.
    filters = FacilityFilters.parse(types=["home"], services=["twenty_four_hour"])
    filtered = isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=10, mode="walk", filters=filters,
                         facility_limit=5)
    subset = {p.id for p in points if p.id in inside and p.facility_type == "home" and "twenty_four_hour" in p.services}
    assert filtered.facilities_matched == len(subset) > 5
    assert {h.id for h in filtered.facilities} <= subset and len(filtered.facilities) == 5


def test_real_seoul_centres_inside(seoul_engine: Engine, osm_dir: Path) -> None:
    """The OA-20300 centres of Jamsil against the polygon; the network is committed under a test-only name."""
    import_osm_network(seoul_engine, osm_dir / JAMSIL, network="test_routing_jamsil")
    with seoul_engine.connect() as conn:
        iso = isochrone(conn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=15, mode="walk",
                        network="test_routing_jamsil")
        points = conn.execute(text("""
            SELECT id, ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat FROM facilities
            WHERE status IN ('active', 'reopened')""")).all()
    polygon = shape(iso.geometry_4326)
    shapely.prepare(polygon)
    inside = {p.id for p in points if polygon.intersects(Point(p.lon, p.lat))}
    assert inside, "a 15-minute walk around Jamsil station reaches some centres"
    assert {h.id for h in iso.facilities} == inside


def test_query_errors(rconn: Connection) -> None:
    with pytest.raises(InvalidQuery, match="outside the road network"):
        isochrone(rconn, settings=S, lat=37.5665, lon=126.9780, minutes=10, mode="walk")  # Seoul City Hall
    with pytest.raises(RoutingUnavailable, match="nowhere"):
        isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=10, mode="walk", network="nowhere")
    for minutes in (0, -5, 61, math.nan):
        with pytest.raises(InvalidQuery, match="minutes"):
            isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=minutes, mode="walk")
    with pytest.raises(InvalidQuery, match="mode"):
        isochrone(rconn, settings=S, lat=JAMSIL_LAT, lon=JAMSIL_LON, minutes=10, mode="bike")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery):
        isochrone(rconn, settings=S, lat=127.1, lon=37.5, minutes=10, mode="walk")  # swapped
    # No network at all (deleted inside the rolled-back transaction).
    rconn.execute(text("DELETE FROM road_edges"))
    with pytest.raises(RoutingUnavailable, match="osm import"):
        nearest_vertex(rconn, lat=JAMSIL_LAT, lon=JAMSIL_LON, mode="walk")


def test_walk_snap_skips_roads_closed_to_pedestrians(rconn: Connection) -> None:
    """Snapped for walking, the start vertex always has a walkable edge (Olympic-daero's ramps do not)."""
    rows = rconn.execute(text("""
        SELECT ST_Y(v.geom_4326) AS lat, ST_X(v.geom_4326) AS lon FROM road_vertices v
        WHERE v.network = 'jamsil'
          AND NOT EXISTS (SELECT 1 FROM road_edges e WHERE (e.source = v.id OR e.target = v.id)
                          AND e.walk_cost_s >= 0)""")).all()
    assert rows, "the Jamsil extract has trunk-only junctions"
    for row in rows[:5]:
        start = nearest_vertex(rconn, lat=row.lat, lon=row.lon, mode="walk", network="jamsil",
                               max_distance_m=5000)
        assert start.distance_m > 0
        walkable = rconn.execute(text("SELECT count(*) FROM road_edges WHERE (source = :v OR target = :v) "
                                      "AND walk_cost_s >= 0"), {"v": start.id}).scalar_one()
        assert walkable > 0


def test_cli_osm_import(routing_engine: Engine, osm_dir: Path, tmp_path: Path) -> None:
    """``dolbom osm import`` prints the summary; a bad file exits 1 with the error."""
    env = {**os.environ, "DATABASE_URL": routing_engine.url.render_as_string(hide_password=False)}
    dolbom = str(Path(sys.executable).with_name("dolbom"))
    done = subprocess.run([dolbom, "osm", "import", str(osm_dir / HEUKSEOK), "--network", "cli_heukseok"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = parse_xml(osm_dir / HEUKSEOK)
    assert f"{sum(expected.segments.values())} edges, {len(expected.vertices)} vertices" in done.stderr
    bad = tmp_path / "roads.csv"
    bad.write_text("not,osm\n")
    failed = subprocess.run([dolbom, "osm", "import", str(bad)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 1
    assert "roads.csv is not an OSM extract" in failed.stderr
    with routing_engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM road_edges WHERE network = 'roads'")).scalar_one() == 0
        conn.execute(text("DELETE FROM road_edges WHERE network = 'cli_heukseok'"))
        conn.execute(text("DELETE FROM road_vertices WHERE network = 'cli_heukseok'"))
