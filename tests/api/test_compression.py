"""What makes the map's first load light: gzip of text answers (weak ETags, 304s still), never of tiles; cache
headers of static assets; the marker list (``f=markers``): the same centres with only what a marker shows."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from geo.settings import Settings

RADIUS = {"lat": 37.5665, "lon": 126.978, "radius_m": 3000, "limit": 200}
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as http:
        yield http


def raw(http: TestClient, path: str, headers: dict[str, str], **params: object) -> tuple[dict[str, str], bytes]:
    """Headers and the body as sent (not decoded)."""
    with http.stream("GET", path, params=params, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return dict(response.headers), b"".join(response.iter_raw())


def test_json_is_gzipped_for_clients_that_accept_it_and_decodes_to_the_same_answer(client: TestClient) -> None:
    zipped_headers, zipped = raw(client, "/facilities/radius", GZIP, f="json", **RADIUS)
    plain_headers, plain = raw(client, "/facilities/radius", IDENTITY, f="json", **RADIUS)
    assert zipped_headers["content-encoding"] == "gzip" and "accept-encoding" in zipped_headers["vary"].lower()
    assert "content-encoding" not in plain_headers
    assert gzip.decompress(zipped) == plain
    assert len(zipped) < len(plain) / 4


def test_a_compressed_answer_has_a_weak_etag_that_still_revalidates(client: TestClient) -> None:
    path, params = "/ogc/collections/districts/items", {"limit": 10}
    zipped_headers, _ = raw(client, path, GZIP, **params)
    plain_headers, _ = raw(client, path, IDENTITY, **params)
    assert zipped_headers["content-encoding"] == "gzip"
    assert zipped_headers["etag"] == "W/" + plain_headers["etag"]
    again = client.get(path, params=params, headers={**GZIP, "If-None-Match": zipped_headers["etag"]})
    assert again.status_code == 304


def test_tiles_are_never_compressed(client: TestClient) -> None:
    headers, body = raw(client, "/tiles/facilities/14/13971/6344.mvt", GZIP)
    assert "content-encoding" not in headers and len(body) > 1000
    headers_again, body_again = raw(client, "/tiles/facilities/14/13971/6344.mvt", GZIP)  # from memory now
    assert "content-encoding" not in headers_again and body_again == body


def test_vendored_assets_are_cached_ours_revalidated(client: TestClient) -> None:
    vendor = client.get("/static/vendor/leaflet/leaflet.js")
    ours = client.get("/static/map.js")
    assert vendor.headers["cache-control"] == "public, max-age=86400"
    assert ours.headers["cache-control"] == "public, no-cache" and ours.headers["etag"]
    assert vendor.headers["content-encoding"] == "gzip"


def test_static_assets_are_gzipped_once_and_still_revalidate(client: TestClient) -> None:
    from api.routers.map_page import STATIC_DIR

    path = "/static/vendor/leaflet/leaflet.js"
    headers, body = raw(client, path, GZIP)
    source = (STATIC_DIR / "vendor" / "leaflet" / "leaflet.js").read_bytes()
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == source
    assert int(headers["content-length"]) == len(body) < len(source) / 3
    assert "accept-encoding" in headers["vary"].lower() and headers["etag"].startswith("W/")
    assert headers["cache-control"] == "public, max-age=86400"
    headers_again, body_again = raw(client, path, GZIP)
    assert body_again == body and headers_again["etag"] == headers["etag"]
    assert client.get(path, headers={**GZIP, "If-None-Match": headers["etag"]}).status_code == 304
    plain_headers, plain = raw(client, path, IDENTITY)
    assert "content-encoding" not in plain_headers and plain == source
    ranged = client.get(path, headers={**GZIP, "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == source[:100]


def test_a_changed_static_file_is_compressed_again(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from api.compression import Compression, StaticAssets

    asset = tmp_path / "app.js"
    asset.write_text("const a = 1;\n" * 200)
    app = Compression(Starlette(routes=[Mount("/static", StaticAssets(directory=tmp_path, compress=True))]))
    with TestClient(app) as http:
        _, first = raw(http, "/static/app.js", GZIP)
        asset.write_text("const b = 2;\n" * 300)
        _, second = raw(http, "/static/app.js", GZIP)
    assert gzip.decompress(first) == b"const a = 1;\n" * 200
    assert gzip.decompress(second) == b"const b = 2;\n" * 300


def test_compression_can_be_switched_off(settings: Settings, seoul_engine: Engine) -> None:
    with TestClient(create_app(settings.updated(DOLBOM_COMPRESS=False))) as http:
        headers, _ = raw(http, "/facilities/radius", GZIP, f="json", **RADIUS)
    assert "content-encoding" not in headers


def test_marker_list_has_the_same_centres_with_only_what_a_marker_shows(client: TestClient) -> None:
    full = client.get("/facilities/radius", params={**RADIUS, "f": "json"}, headers=IDENTITY)
    markers = client.get("/facilities/radius", params={**RADIUS, "f": "markers"}, headers=IDENTITY)
    assert markers.status_code == 200 and markers.headers["content-type"].startswith("application/json")
    items, lean = full.json()["items"], markers.json()["items"]
    assert [i["id"] for i in lean] == [i["id"] for i in items] and len(lean) > 100
    keys = {"id", "lon", "lat", "name", "facility_type", "free_by_age", "location_approximate", "vacancy_as_of"}
    assert all(set(i) == keys for i in lean)
    for a, b in zip(lean, items, strict=True):
        assert {k: a[k] for k in keys - {"lon", "lat"}} == {k: b[k] for k in keys - {"lon", "lat"}}
        assert abs(a["lon"] - b["lon"]) < 6e-7 and abs(a["lat"] - b["lat"]) < 6e-7  # 6 decimals: 0.1 m
    assert len(markers.content) < len(full.content) / 3
