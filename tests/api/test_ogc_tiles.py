"""OGC API - Tiles on the real Seoul data: a client that only follows links from the landing page finds and reads a
tile; tile matrix sets are morecantile's; an OGC tile is the /tiles tile; limits follow the data's extent computed
in SQL here (with the tile arithmetic written here); out-of-range tiles are 404, bad parameters 400."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.routers import ogc_tiles
from geo.analysis.planner import PlannerParams, run_planner, save_run
from geo.layers.registry import LAYERS
from geo.settings import Settings

PROBLEM = "application/problem+json"
MVT = "application/vnd.mapbox-vector-tile"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
# Layers with rows in the test database (blind spots need a saved planner run: tests/api/test_ogc_tiles_clients.py).
TABLES = {"facilities": "facilities", "districts": "districts", "admin_dongs": "admin_dongs"}


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    ogc_tiles._bounds_cache.clear()  # extents kept by an earlier module's app (same database) may be a minute old
    with TestClient(create_app(settings)) as http:
        yield http


def link(doc: dict[str, Any], rel: str, media_type: str | None = None) -> str:
    """The href of the first link of ``doc`` with ``rel`` (and type)."""
    return next(x["href"] for x in doc["links"] if x["rel"] == rel and media_type in (None, x.get("type")))


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(row, col) of the Web Mercator tile holding lon/lat at zoom z (the slippy-map formula)."""
    n = 2**z
    col = int((lon + 180.0) / 360.0 * n)
    row = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return row, col


def point_in(engine: Engine, table: str) -> tuple[float, float]:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_4326) p FROM {table} "
                                 "ORDER BY 1 LIMIT 1) s")).one()


def extent(engine: Engine, table: str) -> tuple[float, float, float, float]:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                 f"(SELECT ST_Extent(geom_4326) e FROM {table}) s")).one()


def fill(template: str, z: int, row: int, col: int) -> str:
    return template.replace("{tileMatrix}", str(z)).replace("{tileRow}", str(row)).replace("{tileCol}", str(col))


def test_a_client_following_links_from_the_landing_page_reads_a_tile(client: TestClient,
                                                                    seoul_engine: Engine) -> None:
    landing = client.get("/ogc").json()
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets" in client.get(
        link(landing, "conformance")).json()["conformsTo"]
    tilesets = client.get(link(landing, REL + "tilesets-vector", "application/json")).json()
    tileset_ref = next(t for t in tilesets["tilesets"] if t["dataType"] == "vector")
    assert tileset_ref["tileMatrixSetURI"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    tileset = client.get(link(tileset_ref, "self", "application/json")).json()
    template = link(tileset, "item", MVT)
    assert next(x for x in tileset["links"] if x["rel"] == "item")["templated"] is True
    z = 14
    row, col = tile_of(*point_in(seoul_engine, "facilities"), z)
    limit = next(x for x in tileset["tileMatrixSetLimits"] if x["tileMatrix"] == str(z))
    assert limit["minTileRow"] <= row <= limit["maxTileRow"] and limit["minTileCol"] <= col <= limit["maxTileCol"]
    response = client.get(fill(template, z, row, col))
    assert response.status_code == 200 and response.headers["content-type"] == MVT
    decoded = mapbox_vector_tile.decode(response.content)
    assert decoded["facilities"]["features"]
    assert set(decoded) <= {layer["id"] for layer in tileset["layers"]}


@pytest.mark.parametrize("layer_id", list(TABLES))
def test_each_collection_links_its_tileset_and_its_tile_is_the_tiles_route_tile(
        client: TestClient, seoul_engine: Engine, layer_id: str) -> None:
    collection = next(c for c in client.get("/ogc/collections").json()["collections"] if c["id"] == layer_id)
    tilesets = client.get(link(collection, REL + "tilesets-vector", "application/json")).json()
    tileset = client.get(link(tilesets["tilesets"][0], "self")).json()
    layer = LAYERS[layer_id]
    z = max(layer.minzoom, min(14, layer.maxzoom))
    row, col = tile_of(*point_in(seoul_engine, TABLES[layer_id]), z)
    ogc = client.get(fill(link(tileset, "item", MVT), z, row, col))
    ours = client.get(f"/tiles/{layer_id}/{z}/{col}/{row}.mvt")
    assert ogc.status_code == ours.status_code == 200
    assert ogc.content == ours.content and ogc.headers["etag"] == ours.headers["etag"]
    decoded = mapbox_vector_tile.decode(ogc.content)
    assert list(decoded) == [layer_id] and decoded[layer_id]["features"]
    # The tileset's vector layer lists every field its tiles carry.
    schema = next(x for x in tileset["layers"] if x["id"] == layer_id)["propertiesSchema"]["properties"]
    widest = client.get(fill(link(tileset, "item", MVT), layer.maxzoom, *tile_of(*point_in(
        seoul_engine, TABLES[layer_id]), layer.maxzoom)))
    fields = {k for f in mapbox_vector_tile.decode(widest.content)[layer_id]["features"] for k in f["properties"]}
    assert fields and fields <= set(schema)
    # Conditional GET through the OGC path as on /tiles.
    assert client.get(ogc.url, headers={"If-None-Match": ogc.headers["etag"]}).status_code == 304
    assert client.head(str(ogc.url)).status_code == 200


def test_combined_tile_equals_the_tiles_all_tile(client: TestClient, seoul_engine: Engine) -> None:
    tileset = client.get("/ogc/tiles/WebMercatorQuad").json()
    assert [x["id"] for x in tileset["layers"]] == list(LAYERS)
    z = 12
    row, col = tile_of(*point_in(seoul_engine, "districts"), z)
    ogc = client.get(fill(link(tileset, "item", MVT), z, row, col))
    ours = client.get(f"/tiles/all/{z}/{col}/{row}.mvt")
    assert ogc.status_code == 200 and ogc.content == ours.content
    assert {"facilities", "districts", "admin_dongs"} <= set(mapbox_vector_tile.decode(ogc.content))


def test_tile_matrix_sets_are_morecantile_definitions(client: TestClient) -> None:
    listing = client.get(link(client.get("/ogc").json(), REL + "tiling-schemes")).json()
    assert [s["id"] for s in listing["tileMatrixSets"]] == ["WebMercatorQuad"]
    for entry in listing["tileMatrixSets"]:
        doc = client.get(link(entry, "self")).json()
        parsed = morecantile.TileMatrixSet.model_validate(doc)
        reference = morecantile.tms.get(entry["id"])
        assert parsed == reference and entry["uri"] == reference.uri
        assert [m.id for m in parsed.tileMatrices] == [str(z) for z in range(25)]
    # The tileset's tiling-scheme link is that definition.
    tileset = client.get("/ogc/collections/facilities/tiles/WebMercatorQuad").json()
    assert client.get(link(tileset, REL + "tiling-scheme")).json() == client.get(
        "/ogc/tileMatrixSets/WebMercatorQuad").json()


@pytest.mark.parametrize("layer_id", list(TABLES))
def test_limits_are_the_zoom_range_and_the_tiles_of_the_data_extent(client: TestClient, seoul_engine: Engine,
                                                                    layer_id: str) -> None:
    layer = LAYERS[layer_id]
    west, south, east, north = extent(seoul_engine, TABLES[layer_id])
    tileset = client.get(f"/ogc/collections/{layer_id}/tiles/WebMercatorQuad").json()
    limits = tileset["tileMatrixSetLimits"]
    assert [x["tileMatrix"] for x in limits] == [str(z) for z in range(layer.minzoom, layer.maxzoom + 1)]
    for limit in limits:
        z = int(limit["tileMatrix"])
        (min_row, min_col), (max_row, max_col) = tile_of(west, north, z), tile_of(east, south, z)
        assert (limit["minTileRow"], limit["maxTileRow"], limit["minTileCol"], limit["maxTileCol"]) == (
            min_row, max_row, min_col, max_col)
    assert tileset["boundingBox"]["lowerLeft"] == pytest.approx([west, south])
    assert tileset["boundingBox"]["upperRight"] == pytest.approx([east, north])


def test_out_of_range_tiles_are_404_and_bad_parameters_400(client: TestClient, seoul_engine: Engine) -> None:
    row, col = tile_of(*point_in(seoul_engine, "districts"), 12)
    base = "/ogc/collections/districts/tiles/WebMercatorQuad"
    assert client.get(f"{base}/12/{row}/{col}").status_code == 200
    not_found = [
        f"{base}/4/{row >> 8}/{col >> 8}",            # below the layer's zoom range (districts: 5-16)
        f"{base}/17/{row * 32}/{col * 32}",           # above it
        f"{base}/25/0/0", f"{base}/abc/0/0",          # no such tile matrix in WebMercatorQuad
        f"{base}/12/{2**12}/{col}",                   # beyond the matrix's rows
        f"{base}/12/0/0",                             # in the matrix, outside the data's limits
        "/ogc/collections/districts/tiles/WorldCRS84Quad/12/0/0", "/ogc/collections/districts/tiles/WorldCRS84Quad",
        "/ogc/tileMatrixSets/WorldCRS84Quad", f"/ogc/collections/nope/tiles/WebMercatorQuad/12/{row}/{col}",
        f"/ogc/tiles/WebMercatorQuad/3/{row >> 9}/{col >> 9}",  # below every layer's zoom range
    ]
    for url in not_found:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == PROBLEM
    for url in (f"{base}/12/-1/{col}", f"{base}/12/{row}/x", f"{base}/12/{row}/{col}?foo=1",
                "/ogc/tileMatrixSets?f=xml"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.headers["content-type"] == PROBLEM


def test_metadata_as_html_and_described_in_the_ogc_api_definition(client: TestClient) -> None:
    for url in ("/ogc/tiles", "/ogc/tiles/WebMercatorQuad", "/ogc/collections/facilities/tiles",
                "/ogc/tileMatrixSets", "/ogc/tileMatrixSets/WebMercatorQuad"):
        page = client.get(url, params={"f": "html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), url
    paths = client.get("/ogc/api").json()["paths"]
    assert {"/tileMatrixSets", "/tileMatrixSets/{tileMatrixSetId}", "/tiles/{tileMatrixSetId}",
            "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
            "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"} <= set(paths)


def test_limits_follow_new_data_once_the_kept_extent_expires(client: TestClient, seoul_engine: Engine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Blind spots appear with a saved planner run: the kept (empty) extent serves until it expires, then the
    limits and tiles follow the run's cells."""
    url = "/ogc/collections/blind_spots/tiles/WebMercatorQuad"
    cells = "SELECT geom_4326 FROM planner_cells WHERE blind_spot AND run_id = :run"
    with seoul_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM planner_cells WHERE blind_spot")).scalar_one() == 0
    before = client.get(url).json()
    assert "boundingBox" not in before
    with seoul_engine.begin() as conn:
        run_id = save_run(conn, run_planner(conn, PlannerParams(area_code="11110", catchment_m=400)))
    try:
        assert client.get(url).json()["tileMatrixSetLimits"] == before["tileMatrixSetLimits"]  # kept
        monkeypatch.setattr(ogc_tiles, "BOUNDS_TTL_S", 0.0)
        fresh = client.get(url).json()
        with seoul_engine.connect() as conn:
            west, south, east, north = conn.execute(text(
                f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom_4326) e "
                f"FROM ({cells}) c) s"), {"run": run_id}).one()
            lon, lat = conn.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_4326) p "
                                         f"FROM ({cells}) c ORDER BY 1 LIMIT 1) s"), {"run": run_id}).one()
        assert fresh["boundingBox"]["lowerLeft"] == pytest.approx([west, south])
        assert fresh["boundingBox"]["upperRight"] == pytest.approx([east, north])
        row, col = tile_of(lon, lat, 14)
        assert mapbox_vector_tile.decode(client.get(f"{url}/14/{row}/{col}").content)["blind_spots"]["features"]
        assert client.get(f"{url}/14/{row + 64}/{col}").status_code == 404  # 10 km south: beyond the cells
    finally:
        with seoul_engine.begin() as conn:
            conn.execute(text("DELETE FROM planner_runs WHERE id = :id"), {"id": run_id})
        ogc_tiles._bounds_cache.clear()
