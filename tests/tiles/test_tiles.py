"""Vector tiles: decoded contents against SQL, lean columns per zoom, zoom ranges, TileJSON, ETag/304, and
invalidation that follows the data: one facility's free places change only the tiles that hold it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.layers.features import ItemsQuery, count_statement
from geo.layers.registry import LAYERS
from geo.settings import Settings
from tiles.cache import TileCache
from tiles.mvt import BUFFER, EXTENT

HALF = 20037508.342789244
WAIT_S = 10.0  # a bound on background events, never a timing of the test


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as http:
        yield http


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ tile containing lon/lat (standard slippy-map formula, independent of PostGIS)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def mercator(lon: float, lat: float) -> tuple[float, float]:
    return (HALF * lon / 180.0, HALF / math.pi * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def tile_bounds(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    xmin, ymax = -HALF + x * size, HALF - y * size
    grow = size * margin
    return xmin - grow, ymax - size - grow, xmin + size + grow, ymax + grow


def tile_cache_of(http: TestClient) -> TileCache:
    """The tile cache of the app behind ``http`` (inside its lifespan)."""
    state = http.app.dolbom  # type: ignore[attr-defined]
    assert state is not None
    return state.tile_cache  # type: ignore[no-any-return]


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait for an event of the app's background tasks (a LISTEN connection, a notification), at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the event did not come"
        time.sleep(0.01)


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body) if body else {}


def test_facility_tile_holds_exactly_the_centres_in_its_buffered_envelope(client: TestClient,
                                                                          seoul_engine: Engine) -> None:
    z = 14
    with seoul_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, ST_X(geom_4326), ST_Y(geom_4326) FROM facilities")).all()
    x, y = tile_of(126.9784, 37.5667, z)  # around City Hall
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y, BUFFER / EXTENT)
    expected = set()
    for fid, lon, lat in rows:
        mx, my = mercator(lon, lat)
        if xmin <= mx <= xmax and ymin <= my <= ymax:
            expected.add(fid)
    assert len(expected) > 5
    response = client.get(f"/tiles/facilities/{z}/{x}/{y}.mvt")
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(response.content)["facilities"]
    assert {f["id"] for f in layer["features"]} == expected
    assert set(layer["features"][0]["properties"]) == set(LAYERS["facilities"].properties_at_zoom(z))


def test_lean_properties_grow_with_zoom(client: TestClient) -> None:
    lon, lat = 126.9784, 37.5667
    widths = []
    for z in (12, 15):
        x, y = tile_of(lon, lat, z)
        features = decode(client.get(f"/tiles/facilities/{z}/{x}/{y}.mvt").content)["facilities"]["features"]
        keys = set().union(*(f["properties"].keys() for f in features))
        assert keys <= set(LAYERS["facilities"].properties_at_zoom(z))
        widths.append(len(keys))
    assert widths[0] < widths[1]


def test_combined_tile_respects_zoom_ranges(client: TestClient, seoul_engine: Engine) -> None:
    lon, lat = 126.9784, 37.5667
    with seoul_engine.connect() as conn:  # a layer without rows (no saved planner run) has no MVT layer
        filled = {layer.id for layer in LAYERS.values()
                  if conn.execute(count_statement(layer, ItemsQuery())).scalar_one() > 0}
    assert filled >= {"facilities", "districts", "admin_dongs"}
    for z in (6, 8, 14):
        x, y = tile_of(lon, lat, z)
        response = client.get(f"/tiles/all/{z}/{x}/{y}.mvt")
        names = set(decode(response.content))
        expected = {layer.id for layer in LAYERS.values() if layer.minzoom <= z <= layer.maxzoom} & filled
        assert names == expected, z
    assert client.get("/tiles/facilities/3/6/3.mvt").status_code == 404
    bad = client.get("/tiles/facilities/14/99999/1.mvt")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/tiles/nope/14/1/1.mvt").status_code == 404


def test_tilejson(client: TestClient) -> None:
    doc = client.get("/tiles/all/tilejson.json").json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith("/tiles/all/{z}/{x}/{y}.mvt")
    assert {v["id"] for v in doc["vector_layers"]} == set(LAYERS)
    west, south, east, north = doc["bounds"]
    assert 126 < west < east < 128 and 37 < south < north < 38
    one = client.get("/tiles/districts/tilejson.json").json()
    assert (one["minzoom"], one["maxzoom"]) == (LAYERS["districts"].minzoom, LAYERS["districts"].maxzoom)
    assert "places_per_100_children" in one["vector_layers"][0]["fields"]


def test_tile_etag_and_304(client: TestClient) -> None:
    x, y = tile_of(126.9784, 37.5667, 14)
    url = f"/tiles/all/14/{x}/{y}.mvt"
    first = client.get(url)
    etag = first.headers["etag"]
    assert client.get(url).content == first.content
    cached = client.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.headers["etag"] == etag


# --- invalidation that follows the data ---------------------------------------------------------------------

POINTS = {"a": (127.0000, 37.5000), "b": (127.0300, 37.5200), "c": (126.9500, 37.4800)}


@pytest.fixture(scope="module")
def small_db(make_database) -> Engine:
    """A committed database: one 구, one 행정동 and three centres in different z14 tiles."""
    engine = make_database("layers_tiles")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO districts (code, name, sido_name, source, geom_4326) VALUES ('11999', '가상구', '서울특별시', "
            "'test', ST_Multi(ST_MakeEnvelope(126.90, 37.45, 127.10, 37.55, 4326)))"))
        conn.execute(text(
            "INSERT INTO admin_dongs (id, district_code, name, population_0_5, geom_4326) VALUES (1, '11999', "
            "'가상동', 1000, ST_Multi(ST_MakeEnvelope(126.90, 37.45, 127.10, 37.55, 4326)))"))
        for key, (lon, lat) in POINTS.items():
            conn.execute(text(
                "INSERT INTO facilities (code, name, facility_type, status, district_code, admin_dong_id, capacity, "
                "enrolled, free_by_age, services, geocode_quality, source, geom_4326) VALUES (:code, :name, "
                "'private', 'active', '11999', 1, 50, 40, '{\"total\": 10}', '{}', 'source', 'test', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"), {"code": f"T-{key}", "name": f"가상 {key}",
                                                                 "lon": lon, "lat": lat})
    return engine


def test_a_free_places_update_changes_exactly_the_tiles_holding_the_centre(small_db: Engine) -> None:
    z = 14
    lon, lat = POINTS["a"]
    cx, cy = tile_of(lon, lat, z)
    candidates = [(cx + dx, cy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    candidates += [tile_of(*POINTS[k], z) for k in ("b", "c")]
    mx, my = mercator(lon, lat)

    def holds_a(x: int, y: int) -> bool:
        xmin, ymin, xmax, ymax = tile_bounds(z, x, y, BUFFER / EXTENT)
        return xmin <= mx <= xmax and ymin <= my <= ymax

    settings = Settings(DATABASE_URL=small_db.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings)) as http:
        cache = tile_cache_of(http)
        wait_until(lambda: cache.watching)

        def etags(layer: str) -> dict[tuple[int, int], str]:
            return {(x, y): http.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt").headers["etag"] for x, y in candidates}

        def free_total(x: int, y: int) -> int | None:
            tile = decode(http.get(f"/tiles/facilities/{z}/{x}/{y}.mvt").content)
            found = [f for f in tile.get("facilities", {}).get("features", []) if f["properties"]]
            return found[0]["properties"].get("free_total") if found else None

        before_fac, before_dist = etags("facilities"), etags("districts")
        assert free_total(cx, cy) == 10
        seen = cache.notifications
        with small_db.begin() as conn:  # a writer that knows nothing about tiles
            conn.execute(text("UPDATE facilities SET free_by_age = '{\"total\": 3}' WHERE code = 'T-a'"))
        wait_until(lambda: cache.notifications > seen)  # its NOTIFY reached this process
        after_fac, after_dist = etags("facilities"), etags("districts")
        changed = {xy for xy in candidates if before_fac[xy] != after_fac[xy]}
        assert changed == {xy for xy in candidates if holds_a(*xy)}
        assert (cx, cy) in changed and len(changed) < len(candidates)
        assert after_dist == before_dist  # free places are not a 구 statistic
        assert free_total(cx, cy) == 3  # never the stale cached body

        seen = cache.notifications
        with small_db.begin() as conn:  # capacity is: the 구 tiles change too
            conn.execute(text("UPDATE facilities SET capacity = 60 WHERE code = 'T-a'"))
        wait_until(lambda: cache.notifications > seen)
        assert etags("districts") != after_dist
