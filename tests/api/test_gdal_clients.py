"""Real clients against a real server: GDAL's ogrinfo/ogr2ogr (Debian gdal-bin) read the OGC API (OAPIF
driver, also with a server-side CQL filter) and the MVT tiles from uvicorn on 127.0.0.1; counts equal SQL.
Plus the smoke test over every registered layer (features + one decoded tile); the blind spots come from one
planner run saved for this module."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest
from sqlalchemy import Engine, text

from geo.analysis.planner import PlannerParams, run_planner, save_run
from geo.layers.features import ItemsQuery, count_statement
from geo.layers.registry import LAYERS
from geo.settings import Settings
from tests.disclosure_util import DISCLOSURES_SOURCE, published_disclosures
from tests.serverutil import uvicorn_server

# Each layer's rows in SQL written independently of the registry (blind spots: the latest run per service).
SOURCES = {
    "facilities": "facilities",
    "districts": "districts",
    "admin_dongs": "admin_dongs",
    "blind_spots": "(SELECT c.* FROM planner_cells c WHERE c.blind_spot AND c.run_id IN "
                   "(SELECT max(id) FROM planner_runs GROUP BY service)) blind",
    "disclosures": DISCLOSURES_SOURCE,
}


@pytest.fixture(scope="module")
def planner_run(seoul_engine: Engine) -> Iterator[int]:
    """One saved planner run (종로구, all centres, a short catchment: some dozens of blind spots) for the
    blind-spots layer; removed afterwards, so that the Seoul database is as the other tests expect."""
    with seoul_engine.begin() as conn:
        run_id = save_run(conn, run_planner(conn, PlannerParams(area_code="11110", catchment_m=400)))
    yield run_id
    with seoul_engine.begin() as conn:
        conn.execute(text("DELETE FROM planner_runs WHERE id = :id"), {"id": run_id})


@pytest.fixture(scope="module")
def server(settings: Settings, seoul_engine: Engine, planner_run: int) -> Iterator[str]:
    with published_disclosures(seoul_engine), uvicorn_server(settings.effective_database_url) as base:
        yield base


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def ogr_counts(*args: str) -> dict[str, int]:
    """Feature count per layer from ``ogrinfo -so -al`` text output (GDAL 3.6 has no -json)."""
    counts: dict[str, int] = {}
    name = ""
    for line in run("ogrinfo", "-ro", "-so", "-al", *args).splitlines():
        if line.startswith("Layer name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Feature Count:"):
            counts[name] = int(line.split(":", 1)[1])
    return counts


def sql_count(engine: Engine, layer_id: str, where: str = "true") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {SOURCES[layer_id]} WHERE {where}")).scalar_one())


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_ogr2ogr_round_trips_every_layer(server: str, seoul_engine: Engine, tmp_path: Path, layer_id: str) -> None:
    target = tmp_path / f"{layer_id}.gpkg"
    run("ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{server}/ogc", layer_id, "-oo", "PAGE_SIZE=1000")
    count = ogr_counts(str(target))[layer_id]
    with seoul_engine.connect() as conn:
        expected = conn.execute(count_statement(LAYERS[layer_id], ItemsQuery())).scalar_one()
    assert count == expected == sql_count(seoul_engine, layer_id)


def test_ogrinfo_filter_is_evaluated_by_the_server(server: str, seoul_engine: Engine) -> None:
    where = "capacity > 100 AND facility_type = 'national_public'"
    done = subprocess.run(["ogrinfo", "-ro", "-so", "-oo", "PAGE_SIZE=1000", "--debug", "on", f"OAPIF:{server}/ogc",
                           "facilities", "-where", where], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "filter=" in done.stderr  # GDAL sent the filter (CQL text) instead of filtering on its side
    count = int(next(line for line in done.stdout.splitlines() if line.startswith("Feature Count:")).split(":")[1])
    assert count == sql_count(seoul_engine, "facilities", where)


def test_ogr2ogr_to_epsg5179_lands_where_st_transform_does(server: str, seoul_engine: Engine,
                                                           tmp_path: Path) -> None:
    """Features read by GDAL and written in EPSG:5179 sit where PostGIS puts them (axis order and CRS right)."""
    target = tmp_path / "districts_5179.geojson"
    run("ogr2ogr", "-f", "GeoJSON", "-t_srs", "EPSG:5179", str(target), f"OAPIF:{server}/ogc", "districts")
    with seoul_engine.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Transform(geom_4326, 5179)) c "
                                 "FROM districts WHERE code = '11110') s")).one()
    feature = next(f for f in json.loads(target.read_text())["features"] if f["properties"].get("id") == "11110"
                   or f.get("id") == "11110")
    ring = feature["geometry"]["coordinates"][0][0]
    cx = sum(p[0] for p in ring) / len(ring)
    cy = sum(p[1] for p in ring) / len(ring)
    assert abs(cx - x) < 2000 and abs(cy - y) < 2000  # easting/northing of 종로구, not degrees or swapped


def _tile_with_features(engine: Engine, layer_id: str) -> tuple[int, int, int]:
    layer = LAYERS[layer_id]
    z = max(layer.minzoom, min(14, layer.maxzoom))
    with engine.connect() as conn:
        lon, lat = conn.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_4326) p "
                                     f"FROM {SOURCES[layer_id]} ORDER BY 1 LIMIT 1) s")).one()
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


def test_gdal_reads_the_mvt_tiles(server: str, seoul_engine: Engine) -> None:
    z, x, y = _tile_with_features(seoul_engine, "facilities")
    url = f"{server}/tiles/all/{z}/{x}/{y}.mvt"
    gdal_counts = ogr_counts("-oo", f"Z={z}", "-oo", f"X={x}", "-oo", f"Y={y}", f"/vsicurl/{url}")
    decoded = mapbox_vector_tile.decode(httpx.get(url).content)
    assert gdal_counts == {name: len(layer["features"]) for name, layer in decoded.items()}
    assert gdal_counts["facilities"] > 0


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_smoke_every_layer_features_and_one_tile(server: str, seoul_engine: Engine, layer_id: str) -> None:
    items = httpx.get(f"{server}/ogc/collections/{layer_id}/items", params={"limit": 3})
    assert items.status_code == 200 and items.headers["content-type"] == "application/geo+json"
    body = items.json()
    assert body["numberMatched"] == sql_count(seoul_engine, layer_id) and len(body["features"]) == 3
    one = httpx.get(f"{server}/ogc/collections/{layer_id}/items/{body['features'][0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == body["features"][0]["id"]
    z, x, y = _tile_with_features(seoul_engine, layer_id)
    tile = httpx.get(f"{server}/tiles/{layer_id}/{z}/{x}/{y}.mvt")
    assert tile.status_code == 200
    decoded = mapbox_vector_tile.decode(tile.content)
    assert list(decoded) == [layer_id] and decoded[layer_id]["features"]
    assert httpx.get(f"{server}/tiles/{layer_id}/tilejson.json").json()["vector_layers"][0]["id"] == layer_id
