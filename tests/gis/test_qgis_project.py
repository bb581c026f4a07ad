"""gis/dolbom.qgs (QGIS is not installed here, so the file is read as QGIS would find it): valid XML with the
elements QGIS reads; the output of scripts/qgis_project.py; one OGC API - Features layer per registered layer and
nothing else; every data source resolves against a live app and returns data; the fields the styles use are in
what the server sends; the supply classes split the real statistics."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, unquote

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.layers.registry import LAYERS
from geo.settings import Settings
from tests.api.test_ogc_tiles import tile_of
from tests.disclosure_util import DISCLOSURES_SOURCE, published_disclosures

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "gis" / "dolbom.qgs"
SERVER = "http://127.0.0.1:8000"
PROVIDERS = {"vector": "OAPIF", "vector-tile": "xyzvectortiles"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qgis_project", ROOT / "scripts" / "qgis_project.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def root() -> ET.Element:
    return ET.parse(PROJECT).getroot()


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    with published_disclosures(seoul_engine), TestClient(create_app(settings)) as http:
        yield http


def maplayers(root: ET.Element, kind: str) -> list[ET.Element]:
    return [m for m in root.iter("maplayer") if m.get("type") == kind]


def local(url: str) -> str:
    """``url`` on the test app: the path and query of a URL on the project's server."""
    assert url.startswith(SERVER), url
    return url.removeprefix(SERVER)


def oapif_params(source: str) -> dict[str, str]:
    """QGIS's WFS/OAPIF data source URI: ``key='value'`` pairs."""
    return dict(re.findall(r"(\w+)='([^']*)'", source))


def test_the_file_is_the_generators_output() -> None:
    assert PROJECT.read_text(encoding="utf-8") == generator().render(), \
        "run: .venv/bin/python scripts/qgis_project.py --write"


def test_a_qgis_project_with_its_layers_in_the_tree_and_a_seoul_canvas(root: ET.Element) -> None:
    assert PROJECT.read_text(encoding="utf-8").startswith("<!DOCTYPE qgis")
    assert root.tag == "qgis" and re.fullmatch(r"3\.\d+\.\d+-\w+", root.get("version", ""))
    assert root.findtext("projectCrs/spatialrefsys/authid") == "EPSG:3857"
    layers = {m.findtext("id"): m for m in root.iter("maplayer")}
    tree = {t.get("id"): t for t in root.iter("layer-tree-layer")}
    assert set(layers) == set(tree) and len(layers) == len(LAYERS) + 1
    for layer_id, maplayer in layers.items():
        for element in ("datasource", "layername", "provider", "srs/spatialrefsys/authid"):
            assert maplayer.findtext(element), (layer_id, element)
        assert maplayer.findtext("provider") == PROVIDERS[maplayer.get("type", "")]
        assert tree[layer_id].get("source") == maplayer.findtext("datasource")
        assert tree[layer_id].get("providerKey") == maplayer.findtext("provider")
        assert maplayer.find("renderer-v2") is not None or maplayer.find("renderer") is not None
    xmin, ymin, xmax, ymax = (float(root.findtext(f"mapcanvas/extent/{k}") or "nan")
                              for k in ("xmin", "ymin", "xmax", "ymax"))
    assert xmin < 14_130_000 < xmax and ymin < 4_518_000 < ymax  # 서울시청 (126.978, 37.566) in EPSG:3857


def test_every_collection_is_one_features_layer_whose_source_returns_data(root: ET.Element, client: TestClient,
                                                                          seoul_engine: Engine) -> None:
    sources = {m.findtext("id"): oapif_params(m.findtext("datasource") or "") for m in maplayers(root, "vector")}
    assert sorted(p["typename"] for p in sources.values()) == sorted(LAYERS)
    for params in sources.values():
        base = local(params["url"])
        assert client.get(base).json()["links"]  # the landing page QGIS starts from
        collection = client.get(f"{base}/collections/{params['typename']}")
        assert collection.status_code == 200
        items = client.get(f"{base}/collections/{params['typename']}/items",
                           params={"limit": params["pageSize"]}).json()
        with seoul_engine.connect() as conn:
            expected = conn.execute(text("SELECT count(*) FROM " + {
                "facilities": "facilities", "districts": "districts", "admin_dongs": "admin_dongs",
                "blind_spots": "planner_cells WHERE blind_spot",
                "disclosures": DISCLOSURES_SOURCE}[params["typename"]])).scalar_one()
        assert items["type"] == "FeatureCollection" and items["numberMatched"] >= min(expected, 1)
        if params["typename"] != "blind_spots":  # no planner run in this database
            assert items["features"]


def _fields(expression: str) -> set[str]:
    return set(re.findall(r'"(\w+)"', expression))


def test_the_styles_use_fields_the_server_sends(root: ET.Element, client: TestClient) -> None:
    for maplayer in maplayers(root, "vector"):
        typename = oapif_params(maplayer.findtext("datasource") or "")["typename"]
        renderer = maplayer.find("renderer-v2")
        assert renderer is not None
        used = {renderer.get("attr")} - {None}
        for rule in renderer.iter("rule"):
            used |= _fields(rule.get("filter", "").replace("ELSE", ""))
        queryables = client.get(f"/ogc/collections/{typename}/queryables").json()["properties"]
        assert used <= set(queryables), typename


def test_the_vector_tile_layer_reads_the_combined_tiles(root: ET.Element, client: TestClient,
                                                        seoul_engine: Engine) -> None:
    (maplayer,) = maplayers(root, "vector-tile")
    params = {k: v[0] for k, v in parse_qs(maplayer.findtext("datasource") or "").items()}
    assert params["type"] == "xyz"
    assert (int(params["zmin"]), int(params["zmax"])) == (min(la.minzoom for la in LAYERS.values()),
                                                          max(la.maxzoom for la in LAYERS.values()))
    template = unquote(params["url"])
    assert client.get(local(template.rsplit("/", 3)[0]) + "/tilejson.json").json()["tilejson"] == "3.0.0"
    with seoul_engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_4326) p "
                                     "FROM facilities ORDER BY 1 LIMIT 1) s")).one()
    styles = list(maplayer.iter("style"))
    assert {s.get("layer") for s in styles} == set(LAYERS)
    for style in styles:
        layer = LAYERS[style.get("layer", "")]
        low, high = int(style.get("min-zoom", "-1")), int(style.get("max-zoom", "-1"))
        assert layer.minzoom <= low <= high <= layer.maxzoom
        assert style.find("symbols/symbol") is not None
        # The fields of its filter are in the tile at its lowest zoom (the leanest property set).
        assert _fields(style.get("expression", "")) <= set(layer.properties_at_zoom(low)) | {"id"}
    for z in (12, 16):
        row, col = tile_of(lon, lat, z)
        url = template.replace("{z}", str(z)).replace("{x}", str(col)).replace("{y}", str(row))
        response = client.get(local(url))
        assert response.status_code == 200
        decoded = mapbox_vector_tile.decode(response.content)
        assert decoded["facilities"]["features"] and set(decoded) <= set(LAYERS)


def test_the_supply_classes_split_the_real_statistics(root: ET.Element, client: TestClient) -> None:
    """구 and 행정동 fall into several classes, none outside them (the style shows differences that exist)."""
    for typename, at_least in (("districts", 3), ("admin_dongs", 4)):
        renderer = next(m for m in maplayers(root, "vector")
                        if f"typename='{typename}'" in (m.findtext("datasource") or "")).find("renderer-v2")
        assert renderer is not None and renderer.get("attr") == "places_per_100_children"
        classes = [(float(r.get("lower", "nan")), float(r.get("upper", "nan"))) for r in renderer.iter("range")]
        items = client.get(f"/ogc/collections/{typename}/items", params={"limit": 1000}).json()
        ratios = [f["properties"]["places_per_100_children"] for f in items["features"]
                  if f["properties"]["places_per_100_children"] is not None]
        assert len(ratios) == items["numberMatched"] > 0
        assert all(any(lower <= v < upper for lower, upper in classes) for v in ratios)
        used = {i for v in ratios for i, (lower, upper) in enumerate(classes) if lower <= v < upper}
        assert len(used) >= at_least, (typename, sorted(ratios))
