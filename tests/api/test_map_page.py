"""The map page and its assets are served, and the page calls endpoints that exist in the OpenAPI document."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.app import create_app
from geo.settings import Settings


def test_map_page_and_assets(settings: Settings, engine) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
        script = client.get("/static/map.js")
        css = client.get("/static/map.css")
        paths = set(client.get("/openapi.json").json()["paths"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="/static/map.js"' in page.text
    assert script.status_code == 200 and css.status_code == 200
    called = set(re.findall(r"fetch\(`(/[a-z/]+)", script.text))
    assert called == {"/facilities/radius", "/places/reverse", "/places/search"}
    assert called <= paths
