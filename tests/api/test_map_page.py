"""The map page and its assets are served, and the page calls endpoints that exist in the OpenAPI document."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.app import create_app
from geo.settings import Settings


def test_map_page_and_assets(settings: Settings, engine) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
        assets = {name: client.get(f"/static/{name}") for name in (
            "map.js", "i18n.js", "map.css", "vendor/leaflet/leaflet.js", "vendor/markercluster/leaflet.markercluster.js",
            "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js", "vendor/markercluster/MarkerCluster.css")}
        licences = {name: client.get(f"/static/vendor/{name}/LICENSE") for name in ("leaflet", "markercluster",
                                                                                    "vectorgrid")}
        paths = set(client.get("/openapi.json").json()["paths"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name, response in assets.items():
        assert response.status_code == 200, name
        # In the page, or loaded by map.js once the first markers are drawn.
        assert f'"/static/{name}"' in page.text or f'"/static/{name}"' in assets["map.js"].text, name
    assert all(r.status_code == 200 and len(r.text) > 500 for r in licences.values())
    # The sources are named once, in the map's attribution, in the page's language (i18n.js).
    i18n = assets["i18n.js"].text
    assert "OA-20300" in i18n and "공공누리" in i18n
    script = assets["map.js"].text
    called = {re.sub(r"\$\{[^}]*\}", "{id}", path) for path in re.findall(r"[`\"](/[a-z][a-zA-Z/_.${}]*)[?`\"]", script)}
    called = {p for p in called if not p.startswith("/static/")}
    # The page's own API, and the routes of the tiles and live-vacancy branches that it tolerates missing.
    assert called >= {"/facilities/radius", "/facilities/{id}", "/places/reverse", "/places/search", "/isochrones"}
    assert {p for p in called if not p.startswith(("/tiles/", "/vacancy/"))} <= paths | {"/facilities/{id}"}
    assert "/facilities/{facility_id}" in paths
    assert {"/tiles/{id}/tilejson.json", "/vacancy/stream"} <= called


def test_every_language_has_every_word() -> None:
    """The four dictionaries and the term tables have the same keys (a missing word would show its key)."""
    from geo.settings import PROJECT_ROOT

    source = (PROJECT_ROOT / "api" / "static" / "i18n.js").read_text(encoding="utf-8")
    strings = source[source.index("const STRINGS"):source.index("const TERMS")]
    blocks = re.split(r"\n  (ko|en|zh|vi): \{", strings)[1:]
    keys = {blocks[i]: set(re.findall(r"(\w+): \"", blocks[i + 1])) for i in range(0, len(blocks), 2)}
    assert set(keys) == {"ko", "en", "zh", "vi"}
    assert keys["ko"] == keys["en"] == keys["zh"] == keys["vi"] and len(keys["ko"]) > 70
    terms = source[source.index("const TERMS"):]
    for entry in re.findall(r"\{ko: [^}]*\}", terms):
        assert all(f"{lang}: " in entry for lang in ("ko", "en", "zh", "vi")), entry
