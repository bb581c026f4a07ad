"""OGC API - Tiles read by real clients from a live uvicorn server: GDAL's OGCAPI driver (the GDAL of the pyogrio
wheel; Debian's 3.6 reads only TMS 1.0) reads a tile matrix of every layer's vector tiles and finds what our
/tiles tile holds; the Python snippets of docs/qgis.md run as written (server URL swapped). Blind spots come from
one planner run saved for this module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import pyogrio
import pytest
from sqlalchemy import Engine, text

from geo.analysis.planner import PlannerParams, run_planner, save_run
from geo.layers.registry import LAYERS
from geo.settings import Settings
from tests.api.test_ogc_tiles import tile_of
from tests.disclosure_util import DISCLOSURES_SOURCE, published_disclosures
from tests.serverutil import uvicorn_server

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "qgis.md"
DOCS_SERVER = "http://127.0.0.1:8000"
# A point on each layer's data (blind spots: the latest run per service, as the layer defines them).
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
    """One saved planner run (종로구, a short catchment: some dozens of blind spots), removed afterwards."""
    with seoul_engine.begin() as conn:
        run_id = save_run(conn, run_planner(conn, PlannerParams(area_code="11110", catchment_m=400)))
    yield run_id
    with seoul_engine.begin() as conn:
        conn.execute(text("DELETE FROM planner_runs WHERE id = :id"), {"id": run_id})


@pytest.fixture(scope="module")
def server(settings: Settings, seoul_engine: Engine, planner_run: int) -> Iterator[str]:
    with published_disclosures(seoul_engine), uvicorn_server(settings.effective_database_url) as base:
        yield base


def tile_bounds_3857(engine: Engine, z: int, row: int, col: int) -> tuple[float, float, float, float]:
    """The tile's box in EPSG:3857 metres, from PostGIS (ST_TileEnvelope)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                 "(SELECT ST_TileEnvelope(:z, :x, :y) e) s"), {"z": z, "x": col, "y": row}).one()


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_gdal_ogcapi_driver_reads_the_vector_tiles_of_every_layer(server: str, seoul_engine: Engine,
                                                                  layer_id: str) -> None:
    layer = LAYERS[layer_id]
    z = max(layer.minzoom, min(14, layer.maxzoom))
    with seoul_engine.connect() as conn:
        lon, lat = conn.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_4326) p "
                                     f"FROM {SOURCES[layer_id]} ORDER BY 1 LIMIT 1) s")).one()
    row, col = tile_of(lon, lat, z)
    west, south, east, north = tile_bounds_3857(seoul_engine, z, row, col)
    inset = (east - west) / 100  # strictly inside the one tile: GDAL fetches exactly it
    box = {"MINX": west + inset, "MINY": south + inset, "MAXX": east - inset, "MAXY": north - inset}
    url = f"OGCAPI:{server}/ogc/collections/{layer_id}"
    info = pyogrio.read_info(url, layer=f"Zoom level {z}", **box)
    assert info["driver"] == "OGCAPI" and info["crs"] == "EPSG:3857"
    frame = pyogrio.read_dataframe(url, layer=f"Zoom level {z}", **box)
    ours = mapbox_vector_tile.decode(httpx.get(f"{server}/tiles/{layer_id}/{z}/{col}/{row}.mvt").content)
    assert len(frame) == len(ours[layer_id]["features"]) > 0
    fields = set(layer.properties_at_zoom(z)) - {"id"}
    assert fields <= set(frame.columns)


def _python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_the_docs_have_the_three_python_snippets() -> None:
    snippets = _python_snippets()
    assert len(snippets) == 3 and all(DOCS_SERVER in s for s in snippets)


@pytest.mark.parametrize("index", range(3))
def test_python_snippet_of_the_docs_runs(server: str, index: int, capsys: pytest.CaptureFixture[str]) -> None:
    snippet = _python_snippets()[index].replace(DOCS_SERVER, server)
    namespace: dict[str, object] = {}
    exec(compile(snippet, f"docs/qgis.md python snippet {index + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    if index == 0:  # the combined tile in the middle of Seoul holds districts, dongs and centres
        counts = namespace["tile"]
        assert isinstance(counts, dict) and {"districts", "admin_dongs", "facilities"} <= set(counts)
        assert all(counts[name]["features"] for name in ("districts", "admin_dongs", "facilities"))
    elif index == 1:  # every collection's tilesets were found; the districts' schema lists their fields
        assert set(namespace["tilesets"]) == set(LAYERS)  # type: ignore[arg-type]
        assert "places_per_100_children" in printed
    else:
        assert len(namespace["centres"]) > 0 and "EPSG:3857" in printed  # type: ignore[arg-type]
