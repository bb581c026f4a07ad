"""OGC API - Features on the real Seoul data: landing, conformance, collections, items (paging, bbox, bbox-crs,
crs, datetime, CQL2 text/JSON), single items, queryables, HTML, ETags, exports and problem+json errors.
Expected results come from SQL written here, not from the layer code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.layers.registry import LAYERS
from geo.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as http:
        yield http


def sql(engine: Engine, query: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(query), params))


def test_landing_conformance_and_collections(client: TestClient) -> None:
    landing = client.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in conformance
    collections = client.get("/ogc/collections").json()["collections"]
    assert [c["id"] for c in collections] == list(LAYERS)
    for c in collections:
        assert "http://www.opengis.net/def/crs/EPSG/0/5179" in c["crs"]
        assert any(link["rel"] == "items" for link in c["links"])
    api = client.get("/ogc/api").json()
    assert "/collections/{collectionId}/items" in api["paths"]
    assert client.get("/ogc/collections?f=html").headers["content-type"].startswith("text/html")
    html = client.get("/ogc/collections/districts/items", params={"f": "html", "limit": 3})
    assert html.status_code == 200 and "<table>" in html.text


def test_items_page_through_next_links(client: TestClient, seoul_engine: Engine) -> None:
    expected = [r[0] for r in sql(seoul_engine, "SELECT code FROM districts ORDER BY code")]
    seen: list[str] = []
    url: str | None = "/ogc/collections/districts/items?limit=10"
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["numberMatched"] == len(expected)
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    assert seen == expected
    assert pages == -(-len(expected) // 10)


def test_bbox_in_crs84_and_epsg5179_select_what_sql_selects(client: TestClient, seoul_engine: Engine) -> None:
    expected = {r[0] for r in sql(seoul_engine, "SELECT id FROM facilities WHERE ST_Intersects(geom_4326, "
                                                "ST_MakeEnvelope(126.97, 37.55, 126.99, 37.57, 4326))")}
    body = client.get("/ogc/collections/facilities/items",
                      params={"bbox": "126.97,37.55,126.99,37.57", "limit": 1000}).json()
    assert {f["id"] for f in body["features"]} == expected and body["numberMatched"] == len(expected)
    # The same kind of box in EPSG:5179, northing first as EPSG defines it.
    n0, e0, n1, e1 = 1_950_000, 953_000, 1_952_000, 955_000
    expected = {r[0] for r in sql(seoul_engine, "SELECT id FROM facilities WHERE ST_Intersects(geom_4326, "
                                  f"ST_Transform(ST_MakeEnvelope({e0}, {n0}, {e1}, {n1}, 5179), 4326))")}
    assert expected
    body = client.get("/ogc/collections/facilities/items", params={
        "bbox": f"{n0},{e0},{n1},{e1}", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/5179",
        "limit": 1000}).json()
    assert {f["id"] for f in body["features"]} == expected


@pytest.mark.parametrize(("srid", "north_first"), [(4326, True), (3857, False), (5179, True), (5186, True)])
def test_crs_output_matches_st_transform_and_axis_order(client: TestClient, seoul_engine: Engine, srid: int,
                                                        north_first: bool) -> None:
    fid, x, y = sql(seoul_engine, f"SELECT id, ST_X(ST_Transform(geom_4326, {srid})), "
                    f"ST_Y(ST_Transform(geom_4326, {srid})) FROM facilities ORDER BY id LIMIT 1")[0]
    uri = f"http://www.opengis.net/def/crs/EPSG/0/{srid}"
    response = client.get(f"/ogc/collections/facilities/items/{fid}", params={"crs": uri})
    assert response.headers["content-crs"] == f"<{uri}>"
    coords = response.json()["geometry"]["coordinates"]
    expected = [y, x] if north_first else [x, y]
    tolerance = 1e-6 if srid == 4326 else 0.01
    assert coords == pytest.approx(expected, abs=tolerance)
    default = client.get(f"/ogc/collections/facilities/items/{fid}").json()["geometry"]["coordinates"]
    lon, lat = sql(seoul_engine, "SELECT ST_X(geom_4326), ST_Y(geom_4326) FROM facilities WHERE id = :i", i=fid)[0]
    assert default == pytest.approx([lon, lat], abs=1e-6)  # CRS84: longitude first


@pytest.mark.parametrize(("params", "where"), [
    ({"filter": "A_CONTAINS(services, ('twenty_four_hour')) AND free_total > 0"},
     "services @> ARRAY['twenty_four_hour'] AND (free_by_age->>'total')::int > 0"),
    ({"filter": '{"op": "a_overlaps", "args": [{"property": "services"}, ["holiday", "twenty_four_hour"]]}',
      "filter-lang": "cql2-json"}, "services && ARRAY['holiday', 'twenty_four_hour']"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((126.9 37.5, 127 37.5, 127 37.6, 126.9 37.5)))"},
     "ST_Intersects(geom_4326, ST_GeomFromText('POLYGON((126.9 37.5, 127 37.5, 127 37.6, 126.9 37.5))', 4326))"),
    ({"datetime": "2026-07-21"}, "data_date = DATE '2026-07-21'"),
    ({"datetime": "../2020-01-01"}, "data_date <= DATE '2020-01-01'"),
    ({"filter": "facility_type = 'home'", "bbox": "126.9,37.5,127.1,37.6"},
     "facility_type = 'home' AND ST_Intersects(geom_4326, ST_MakeEnvelope(126.9, 37.5, 127.1, 37.6, 4326))"),
])
def test_filters_over_http_count_like_sql(client: TestClient, seoul_engine: Engine, params: dict, where: str) -> None:
    expected = sql(seoul_engine, f"SELECT count(*) FROM facilities WHERE {where}")[0][0]
    body = client.get("/ogc/collections/facilities/items", params={**params, "limit": 1}).json()
    assert body["numberMatched"] == expected


ITEMS = "/ogc/collections/facilities/items"


# OGC API - Features Part 1 (7.5, 7.6, /req/core/query-param-invalid and -unknown): 400, not FastAPI's 422.
@pytest.mark.parametrize(("path", "params", "status"), [
    (ITEMS, {"limit": "0"}, 400),
    (ITEMS, {"limit": "abc"}, 400),
    (ITEMS, {"offset": "-1"}, 400),
    (ITEMS, {"bbox": "1,2,3"}, 400),
    (ITEMS, {"bbox": "a,b,c,d"}, 400),
    (ITEMS, {"foo": "bar"}, 400),
    (ITEMS, {"colour": "red"}, 400),
    (ITEMS, {"datetime": "yesterday"}, 400),
    (ITEMS, {"filter": "capacity >"}, 400),
    (ITEMS, {"filter": "unknown_prop = 1"}, 400),
    (ITEMS, {"filter": "{not json", "filter-lang": "cql2-json"}, 400),
    (ITEMS, {"filter-lang": "sql", "filter": "1=1"}, 400),
    (ITEMS, {"crs": "http://www.opengis.net/def/crs/EPSG/0/2097"}, 400),
    (ITEMS, {"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/2097", "bbox": "1,2,3,4"}, 400),
    (ITEMS + "/1", {"crs": "http://www.opengis.net/def/crs/EPSG/0/2097"}, 400),
    ("/ogc/collections", {"f": "xml"}, 400),
    ("/ogc/collections", {"foo": "bar"}, 400),
    ("/ogc/collections/facilities", {"limit": "3"}, 400),
    ("/ogc/conformance", {"foo": "bar"}, 400),
    (ITEMS + "/1", {"bbox": "1,2,3,4"}, 400),
    ("/ogc/collections/facilities/export", {"format": "csv", "foo": "bar"}, 400),
    ("/ogc/collections/facilities/export", {"format": "shp"}, 400),
    ("/ogc/collections/nope/items", {}, 404),
    (ITEMS + "/999999999", {}, 404),
    (ITEMS + "/abc", {}, 404),
])
def test_errors_are_problem_json(client: TestClient, path: str, params: dict, status: int) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]


def test_the_rest_of_the_api_keeps_422_for_bad_parameters(client: TestClient) -> None:
    response = client.get("/facilities/radius", params={"lat": "abc", "lon": 127, "radius_m": 500})
    assert response.status_code == 422 and response.json()["status"] == 422


def test_queryables_list_every_property_with_types(client: TestClient) -> None:
    body = client.get("/ogc/collections/facilities/queryables").json()
    assert body["properties"]["services"] == {"type": "array", "items": {"type": "string"}, "title": "services",
                                              "description": LAYERS["facilities"].property("services").description}
    assert body["properties"]["capacity"]["type"] == "integer"
    assert body["properties"]["geometry"]["format"] == "geometry-point"
    assert {p.name for p in LAYERS["facilities"].properties} <= set(body["properties"])


def test_items_etag_and_not_modified(client: TestClient) -> None:
    first = client.get("/ogc/collections/districts/items", params={"limit": 5})
    etag = first.headers["etag"]
    assert "no-cache" in first.headers["cache-control"]
    again = client.get("/ogc/collections/districts/items", params={"limit": 5}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/ogc/collections/districts/items", params={"limit": 6}, headers={"If-None-Match": etag})
    assert other.status_code == 200


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv", "fgb"])
def test_exports_with_a_filter_hold_what_sql_selects(client: TestClient, seoul_engine: Engine, tmp_path: Path,
                                                     fmt: str) -> None:
    expected = {r[0] for r in sql(seoul_engine, "SELECT id FROM facilities WHERE services @> ARRAY['holiday']")}
    response = client.get("/ogc/collections/facilities/export",
                          params={"format": fmt, "filter": "A_CONTAINS(services, ('holiday'))"})
    assert response.status_code == 200
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(response.content)
    frame = gpd.read_file(path) if fmt != "csv" else gpd.read_file(path, engine="pyogrio")
    assert set(int(v) for v in frame["id"]) == expected
    if fmt != "csv":
        assert frame.geometry.notna().all()
    assert all("holiday" in str(v) for v in frame["services"])


@pytest.mark.parametrize("path", [
    "/ogc", "/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/districts",
    "/ogc/collections/districts/items?limit=3", "/ogc/collections/facilities/items/{fid}",
])
def test_head_answers_the_headers_of_get_without_a_body(client: TestClient, seoul_engine: Engine, path: str) -> None:
    path = path.format(fid=sql(seoul_engine, "SELECT min(id) FROM facilities")[0][0])
    for encoding in ("identity", "gzip"):  # gzip: Content-Length is known only once compressed, HEAD leaves it out
        get = client.get(path, headers={"Accept-Encoding": encoding})
        head = client.head(path, headers={"Accept-Encoding": encoding})
        assert get.status_code == 200 and head.status_code == 200
        assert head.content == b""
        for name in ("content-type", "content-length", "etag", "content-crs", "content-encoding"):
            if name == "content-length" and head.headers.get("content-encoding") == "gzip":
                assert name not in head.headers
                continue
            assert head.headers.get(name) == get.headers.get(name), (encoding, name)
    assert client.head("/ogc/collections/nope").status_code == 404


def test_landing_page_at_slash_is_in_the_service_description(client: TestClient) -> None:
    assert client.get("/ogc/").json() == client.get("/ogc").json()
    assert "/" in client.get("/ogc/api").json()["paths"]


@pytest.mark.parametrize(("params", "west", "east"), [
    ({"bbox": "126.95,37.4,126.9,37.7"}, 126.95, 126.9),  # CRS84: lon,lat; west edge east of the east edge
    ({"bbox": "37.4,126.95,37.7,126.9", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}, 126.95, 126.9),
    ({"bbox": "179,37,-179,38"}, 179.0, -179.0),
])
def test_bbox_across_the_antimeridian_is_two_boxes(client: TestClient, seoul_engine: Engine, params: dict,
                                                   west: float, east: float) -> None:
    # A box from 126.95°E eastwards round the globe to 126.9°E holds everything but a strip of Seoul.
    expected = sql(seoul_engine, "SELECT count(*) FROM facilities WHERE ST_Intersects(geom_4326, "
                   "ST_MakeEnvelope(:w, 37.4, 180, 37.7, 4326)) OR ST_Intersects(geom_4326, "
                   "ST_MakeEnvelope(-180, 37.4, :e, 37.7, 4326))"
                   if params["bbox"] != "179,37,-179,38" else
                   "SELECT count(*) FROM facilities WHERE ST_Intersects(geom_4326, "
                   "ST_MakeEnvelope(:w, 37, 180, 38, 4326)) OR ST_Intersects(geom_4326, "
                   "ST_MakeEnvelope(-180, 37, :e, 38, 4326))", w=west, e=east)[0][0]
    response = client.get("/ogc/collections/facilities/items", params={**params, "limit": 1})
    assert response.status_code == 200, response.text
    assert response.json()["numberMatched"] == expected
    if params["bbox"] != "179,37,-179,38":
        assert 0 < expected < sql(seoul_engine, "SELECT count(*) FROM facilities")[0][0]


def test_a_projected_bbox_with_west_after_east_is_refused(client: TestClient) -> None:
    response = client.get("/ogc/collections/facilities/items",
                          params={"bbox": "1960000,960000,1950000,970000",
                                  "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/5179"})
    assert response.status_code == 400 and response.json()["param"] == "bbox"


@pytest.mark.parametrize("path", [
    "/ogc/collections", "/ogc/collections/districts", "/ogc/collections/districts/items?limit=2&offset=3",
    "/ogc/collections/facilities/items/{fid}",
])
def test_alternate_links_give_the_same_resource_as_html(client: TestClient, seoul_engine: Engine, path: str) -> None:
    path = path.format(fid=sql(seoul_engine, "SELECT min(id) FROM facilities")[0][0])
    links = client.get(path).json()["links"]
    alternates = [link for link in links if link["rel"] == "alternate" and link["type"] == "text/html"]
    assert len(alternates) == 1
    href = alternates[0]["href"]
    assert href.startswith("http://testserver" + path.split("?")[0] + "?") and "f=html" in href
    page = client.get(href)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    if "offset=3" in path:  # the page's parameters are kept
        assert "limit=2" in href and "offset=3" in href


def test_temporal_extent_is_the_span_of_data_date(client: TestClient, seoul_engine: Engine) -> None:
    first, last = sql(seoul_engine, "SELECT min(data_date), max(data_date) FROM facilities")[0]
    assert first is not None and last is not None
    extent = client.get("/ogc/collections/facilities").json()["extent"]["temporal"]
    assert extent["interval"] == [[f"{first.isoformat()}T00:00:00Z", f"{last.isoformat()}T23:59:59Z"]]
    listed = {c["id"]: c for c in client.get("/ogc/collections").json()["collections"]}
    assert listed["facilities"]["extent"]["temporal"] == extent
    assert "temporal" not in listed["districts"]["extent"]
    # The interval's ends select the first and the last day's features.
    for day in (first, last):
        count = sql(seoul_engine, "SELECT count(*) FROM facilities WHERE data_date = :d", d=day)[0][0]
        body = client.get("/ogc/collections/facilities/items", params={"datetime": day.isoformat(), "limit": 1})
        assert body.json()["numberMatched"] == count > 0


def test_identical_exports_share_an_etag_and_revalidate_to_304(client: TestClient, seoul_engine: Engine) -> None:
    url = "/ogc/collections/facilities/export"
    params = {"format": "geojson", "filter": "capacity > 100"}
    first, second = client.get(url, params=params), client.get(url, params=params)
    assert first.status_code == second.status_code == 200
    assert first.headers["etag"] == second.headers["etag"]
    assert "no-cache" in first.headers["cache-control"]
    again = client.get(url, params=params, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = client.get(url, params={**params, "format": "csv"}, headers={"If-None-Match": first.headers["etag"]})
    assert other.status_code == 200 and other.headers["etag"] != first.headers["etag"]
    # A change to the layer's data (a row of layer_changes, as the triggers write) changes the ETag.
    with seoul_engine.begin() as conn:
        seq = conn.execute(text("INSERT INTO layer_changes (layer, env_3857) VALUES ('facilities', "
                                "ST_MakeEnvelope(0, 0, 1, 1, 3857)) RETURNING seq")).scalar_one()
    try:
        changed = client.get(url, params=params, headers={"If-None-Match": first.headers["etag"]})
        assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    finally:
        with seoul_engine.begin() as conn:
            conn.execute(text("DELETE FROM layer_changes WHERE seq = :seq"), {"seq": seq})
