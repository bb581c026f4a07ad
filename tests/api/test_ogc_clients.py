"""Real OGC API - Features clients against a real server (uvicorn on 127.0.0.1, the real Seoul data): OWSLib
(``owslib.ogcapi.features``) and GDAL's OAPIF driver read collections, items with bbox/limit, queryables and the new
query parameters, and both see the 400 of OGC API - Features Part 1 for every bad request of the probe list; the
GeoPackage export read by Debian's GDAL keeps its types; the code blocks of docs/gis-clients.md titled
"(tested)" run as written against the server. Counts come from SQL written here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from owslib.ogcapi.features import Features
from sqlalchemy import Engine, text

from geo.layers.registry import LAYERS
from geo.settings import Settings
from tests.serverutil import uvicorn_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS_BASE = "http://127.0.0.1:8000"

# The probes of issue #25: each is a 400 problem (Part 1, /req/core/query-param-invalid and -unknown; Part 2 and
# Part 3 for crs and filter).
PROBES: list[tuple[str, dict[str, str]]] = [
    ("limit=0", {"limit": "0"}),
    ("limit=abc", {"limit": "abc"}),
    ("bbox=1,2,3", {"bbox": "1,2,3"}),
    ("bbox=a,b,c,d", {"bbox": "a,b,c,d"}),
    ("foo=bar", {"foo": "bar"}),
    ("datetime=yesterday", {"datetime": "yesterday"}),
    ("malformed CQL2", {"filter": "capacity >"}),
    ("unknown property in a filter", {"filter": "colour = 'red'"}),
    ("unsupported crs", {"crs": "http://www.opengis.net/def/crs/EPSG/0/2097"}),
]


@pytest.fixture(scope="module")
def server(settings: Settings, seoul_engine: Engine) -> Iterator[str]:
    with uvicorn_server(settings.effective_database_url) as base:
        yield base


def sql_count(engine: Engine, where: str = "true") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM facilities WHERE {where}")).scalar_one())


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, cwd=cwd)


# --- OWSLib --------------------------------------------------------------------------------------------------------

def test_owslib_reads_collections_items_and_queryables(server: str, seoul_engine: Engine) -> None:
    api = Features(f"{server}/ogc")
    assert api.feature_collections() == list(LAYERS)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    queryables = api.collection_queryables("facilities")["properties"]
    assert {"capacity", "services", "geometry"} <= set(queryables)
    box = [126.96, 37.55, 127.0, 37.58]
    page = api.collection_items("facilities", bbox=box, limit=25)
    expected = sql_count(seoul_engine, "ST_Intersects(geom_4326, ST_MakeEnvelope(126.96, 37.55, 127.0, 37.58, 4326))")
    assert page["numberMatched"] == expected and page["numberReturned"] == len(page["features"]) == 25
    one = api.collection_item("facilities", str(page["features"][0]["id"]))
    assert one["id"] == page["features"][0]["id"]


def test_owslib_passes_queryables_properties_and_sortby(server: str, seoul_engine: Engine) -> None:
    api = Features(f"{server}/ogc")
    page = api.collection_items("facilities", facility_type="national_public", filter="capacity >= 100",
                                properties="name,capacity", sortby=("capacity", "desc"), limit=50)
    assert page["numberMatched"] == sql_count(seoul_engine, "facility_type = 'national_public' AND capacity >= 100")
    capacities = [f["properties"]["capacity"] for f in page["features"]]
    assert capacities == sorted(capacities, reverse=True)
    assert all(set(f["properties"]) == {"name", "capacity"} for f in page["features"])


def test_owslib_sends_a_cql2_json_filter_in_the_body(server: str, seoul_engine: Engine) -> None:
    api = Features(f"{server}/ogc")
    cql2 = {"op": "and", "args": [{"op": ">=", "args": [{"property": "capacity"}, 100]},
                                  {"op": "=", "args": [{"property": "status"}, "active"]}]}
    page = api.collection_items("facilities", cql=cql2, limit=5)
    assert page["numberMatched"] == sql_count(seoul_engine, "capacity >= 100 AND status = 'active'") > 5
    assert len(page["features"]) == 5


@pytest.mark.parametrize(("name", "params"), PROBES, ids=[p[0] for p in PROBES])
def test_owslib_sees_400_for_each_probe(server: str, name: str, params: dict[str, str]) -> None:
    api = Features(f"{server}/ogc")
    with pytest.raises(RuntimeError) as raised:
        api.collection_items("facilities", **params)
    problem = json.loads(str(raised.value))
    assert problem["status"] == 400 and problem["detail"], name


# --- GDAL ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params"), PROBES, ids=[p[0] for p in PROBES])
def test_gdal_sees_400_for_each_probe(server: str, name: str, params: dict[str, str]) -> None:
    query = urlencode(params, quote_via=quote, safe=",")
    done = run("ogrinfo", "-ro", "-so", f"OAPIF:{server}/ogc/collections/facilities/items?{query}")
    assert done.returncode != 0, name
    assert "HTTP error code : 400" in done.stderr, done.stderr[-1000:]
    assert '"status":400' in done.stderr


def test_gdal_reads_queryables_given_in_the_url(server: str, seoul_engine: Engine) -> None:
    """An items URL read by GDAL's GeoJSON driver (one page) with queryables as parameters."""
    done = run("ogrinfo", "-ro", "-so", "-al",
               f"{server}/ogc/collections/facilities/items?services=holiday&has_bus=true&limit=500")
    assert done.returncode == 0, done.stderr[-1000:]
    count = int(re.search(r"Feature Count: (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    assert count == sql_count(seoul_engine, "services @> ARRAY['holiday'] AND has_bus") > 0


def test_debian_gdal_reads_the_gpkg_export_typed(server: str, tmp_path: Path) -> None:
    """Debian's GDAL 3.6 (what QGIS on Debian links) sees booleans, dates and a JSON list field."""
    target = tmp_path / "export.gpkg"
    done = run("curl", "-fsS", "-o", str(target), f"{server}/ogc/collections/facilities/export?format=gpkg")
    assert done.returncode == 0, done.stderr
    info = run("ogrinfo", "-ro", "-so", str(target), "facilities")
    assert info.returncode == 0, info.stderr
    fields = dict(re.findall(r"^(\w+): (\S+)", info.stdout, flags=re.MULTILINE))
    assert fields["has_bus"] == "Integer(Boolean)"
    assert fields["data_date"] == "Date"
    assert fields["services"] == "String(JSON)"
    assert fields["updated_at"] == "DateTime"


# --- docs/gis-clients.md ------------------------------------------------------------------------------------------

FENCE = re.compile(r'^```(python|bash) title="([^"]*\(tested\))"\n(.*?)^```', re.MULTILINE | re.DOTALL)


def doc_blocks() -> list[tuple[str, str, str]]:
    """(language, title, code) of the blocks of docs/gis-clients.md titled ``... (tested)``."""
    page = (PROJECT_ROOT / "docs" / "gis-clients.md").read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(page)]


def test_the_page_has_tested_blocks_of_both_kinds() -> None:
    kinds = {language for language, _, _ in doc_blocks()}
    assert kinds == {"python", "bash"} and len(doc_blocks()) >= 5


@pytest.mark.parametrize(("language", "title", "code"), doc_blocks(), ids=[b[1] for b in doc_blocks()])
def test_docs_blocks_run_against_the_server(server: str, tmp_path: Path, language: str, title: str,
                                            code: str) -> None:
    code = code.replace(DOCS_BASE, server)
    assert server in code, "a tested block must talk to the server"
    env: dict[str, Any] = {**os.environ}
    if language == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", code]
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path, env=env)
    assert done.returncode == 0, f"{title}\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), title
