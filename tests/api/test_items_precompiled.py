"""Items pages from the precompiled statements (``geo.layers.features.items_page_query``) against the statements
built per request as before (``items_statement`` / ``count_statement`` through ``geo.db.fetch_all_async``): the
same status, headers and body byte for byte, for a varied set of requests on the Seoul data (bbox, paging with
links, every CQL2 operator the layer tests use, queryables as parameters, properties, sortby, output and bbox
CRSs, datetime, HTML, POST items and search, an empty page, every layer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.routers import features as router
from geo.db import fetch_all_async
from geo.layers import features
from geo.layers.base import Layer
from geo.layers.features import ItemsQuery, count_statement, items_statement, selected
from geo.settings import Settings

ITEMS = "/ogc/collections/facilities/items"
BOX = "126.96,37.55,127.0,37.58"

# Every CQL2 filter of tests/geo/layers/test_layers.py, and more operators.
FILTERS = [
    "capacity > 100 AND facility_type = 'national_public'",
    "facility_type = 'home' AND capacity > 10",
    "A_CONTAINS(services, ('twenty_four_hour','holiday'))",
    "A_OVERLAPS(services, ('twenty_four_hour','holiday'))",
    "A_CONTAINEDBY(services, ('general','extended_hours'))",
    "A_EQUALS(services, ('general'))",
    "name LIKE '%숲%'",
    "CASEI(name) LIKE CASEI('%어린이집%')",
    "free_total BETWEEN 1 AND 5",
    "status IN ('suspended', 'closed')",
    "NOT (has_bus = true) AND cctv_count >= 10",
    "district_code = '11440' OR capacity IS NULL",
    "capacity <> 20 AND capacity < 40 AND enrolled <= 30",
    "data_date = DATE('2026-07-21')",
    "T_AFTER(updated_at, TIMESTAMP('2020-01-01T00:00:00Z'))",
    "T_INTERSECTS(data_date, INTERVAL('2026-01-01', '..'))",
    "S_INTERSECTS(geometry, POLYGON((126.9 37.5, 127.0 37.5, 127.0 37.6, 126.9 37.6, 126.9 37.5)))",
    "S_WITHIN(geometry, BBOX(126.95, 37.52, 127.05, 37.58))",
    "S_DWITHIN(geometry, POINT(126.978 37.5665), 1500)",
    "capacity - enrolled > 30",
    "capacity * 2 >= 80.5",
]

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (ITEMS, {}),
    (ITEMS, {"bbox": BOX, "limit": 50}),
    (ITEMS, {"bbox": "126.97,37.56,126.98,37.57", "limit": 50}),  # another box: the same shape
    (ITEMS, {"bbox": BOX, "limit": 20, "offset": 40}),  # next and prev links
    (ITEMS, {"bbox": BOX, "limit": 20, "offset": 100_000}),  # past the end: the count statement
    (ITEMS, {"bbox": "0,0,1,1"}),  # nothing matches
    (ITEMS, {"bbox": "170,-10,-170,10"}),  # across the antimeridian
    (ITEMS, {"bbox": "37.55,126.96,37.58,127.0", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}),
    (ITEMS, {"bbox": "1950000,451000,1953000,454000", "bbox-crs": "EPSG:5179", "limit": 30}),
    (ITEMS, {"bbox": BOX, "crs": "http://www.opengis.net/def/crs/EPSG/0/5186", "limit": 5}),
    (ITEMS, {"bbox": BOX, "crs": "EPSG:3857", "limit": 5}),
    (ITEMS, {"bbox": BOX, "crs": "http://www.opengis.net/def/crs/EPSG/0/4326", "limit": 5}),
    (ITEMS, {"bbox": BOX, "properties": "name,capacity,services", "sortby": "-capacity,name", "limit": 25}),
    (ITEMS, {"bbox": BOX, "properties": "", "limit": 5}),
    (ITEMS, {"bbox": BOX, "sortby": "-id", "limit": 5, "offset": 3}),
    (ITEMS, {"datetime": "2026-07-21", "limit": 5}),
    (ITEMS, {"datetime": "2020-01-01/..", "bbox": BOX, "limit": 5}),
    (ITEMS, {"datetime": "../2026-12-31T00:00:00Z", "limit": 5}),
    (ITEMS, {"facility_type": "home", "capacity": "20", "limit": 10}),
    (ITEMS, {"facility_type": ["home", "private"], "services": "holiday", "limit": 10}),
    (ITEMS, {"bbox": BOX, "limit": 5, "f": "html"}),
    *((ITEMS, {"filter": cql, "bbox": BOX, "limit": 30}) for cql in FILTERS),
    *((ITEMS, {"filter": cql, "limit": 30, "offset": 10}) for cql in FILTERS[:4]),
    (ITEMS, {"filter": json.dumps({"op": "and", "args": [
        {"op": "a_contains", "args": [{"property": "services"}, ["twenty_four_hour"]]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [126.8, 37.4, 127.2, 37.7]}]},
        {"op": ">=", "args": [{"property": "free_total"}, 1]}]}), "filter-lang": "cql2-json", "limit": 30}),
    (ITEMS, {"filter": "S_INTERSECTS(geometry, BBOX(1950000, 451000, 1953000, 454000))", "filter-crs": "EPSG:5179",
             "limit": 30}),
    (ITEMS, {"filter": "capacity > 10.5", "limit": 5}),
    (ITEMS, {"filter": "capacity > 10.0", "limit": 5}),
    (ITEMS, {"filter": "true", "limit": 5}),
    *((f"/ogc/collections/{layer}/items", {"limit": 7, "offset": 2})
      for layer in ("districts", "admin_dongs", "blind_spots", "disclosures")),
    ("/ogc/collections/districts/items", {"bbox": BOX, "filter": "centres > 10", "properties": "name,centres"}),
]


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as http:
        yield http


async def _page_as_before(conn: Any, layer: Layer, query: ItemsQuery) -> tuple[list[dict[str, Any]], int]:
    """``_page_of`` as it was: the statements built per request, compiled through SQLAlchemy's cache key."""
    rows = await fetch_all_async(conn, items_statement(layer, query))
    if rows:
        matched = int(rows[0][-1])
    else:
        matched = int((await fetch_all_async(conn, count_statement(layer, query)))[0][0])
    names = selected(layer, query)
    return [router._feature(row, names) for row in rows], matched


def _answers(client: TestClient, monkeypatch: pytest.MonkeyPatch, method: str, path: str,
             **kwargs: Any) -> tuple[Any, Any]:
    now = client.request(method, path, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(router, "_page_of", _page_as_before)
        before = client.request(method, path, **kwargs)
    return now, before


def _same(now: Any, before: Any) -> None:
    assert now.status_code == before.status_code
    assert now.content == before.content
    for header in ("content-type", "content-crs", "etag"):
        assert now.headers.get(header) == before.headers.get(header)


@pytest.mark.parametrize(("path", "params"), REQUESTS)
def test_an_items_page_is_the_page_of_the_statement_built_per_request(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, params: dict[str, Any]) -> None:
    now, before = _answers(client, monkeypatch, "GET", path, params=params)
    assert now.status_code == 200, now.text
    _same(now, before)


@pytest.mark.parametrize("body", [
    {"filter": {"op": "in", "args": [{"property": "facility_type"}, ["home", "private"]]}, "limit": 20,
     "offset": 5, "sortby": ["-capacity"], "properties": ["name", "capacity"]},
    {"filter": "capacity >= 40", "bbox": [126.96, 37.55, 127.0, 37.58], "datetime": "2026-07-21", "limit": 10},
    {"filter": {"op": "isNull", "args": [{"property": "capacity"}]}},
])
def test_a_search_is_the_page_of_the_statement_built_per_request(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]) -> None:
    now, before = _answers(client, monkeypatch, "POST", "/ogc/collections/facilities/search", json=body)
    assert now.status_code == 200, now.text
    _same(now, before)
    posted = {"op": ">", "args": [{"property": "free_total"}, 0]}
    now, before = _answers(client, monkeypatch, "POST", ITEMS, params={"bbox": BOX, "limit": 10}, json=posted)
    assert now.status_code == 200, now.text
    _same(now, before)


def test_one_statement_per_shape_whatever_the_values(client: TestClient) -> None:
    """Requests that differ only in their values (bbox, paging, the filter's literals) share one compiled
    statement; another operator, property set or CRS is another shape."""
    features._pages.clear()
    features._filters.clear()
    for west, capacity, offset in ((126.96, 10, 0), (126.97, 20, 5), (126.95, 15, 10)):
        params = {"bbox": f"{west},37.55,127.0,37.58", "filter": f"facility_type = 'home' OR capacity > {capacity}",
                  "limit": 20, "offset": offset}
        assert client.get(ITEMS, params=params).status_code == 200
    assert [key[0] for key in features._pages] == ["items"]
    assert len(features._filters) == 3
    assert client.get(ITEMS, params={"bbox": BOX, "filter": "facility_type = 'home' OR capacity < 10"}).is_success
    assert client.get(ITEMS, params={"bbox": BOX, "properties": "name"}).is_success
    assert [key[0] for key in features._pages] == ["items"] * 3


@pytest.mark.parametrize(("params", "param"), [
    ({"filter": "unknown_prop = 1"}, "filter"),
    ({"filter": "capacity = 'many'"}, "filter"),
    ({"filter": "S_DWITHIN(geometry, POINT(126.978 37.5665), -1)"}, "filter"),
    ({"filter": "data_date = DATE('2026-13-45')"}, "filter"),
])
def test_a_bad_filter_is_refused_every_time(client: TestClient, params: dict[str, Any], param: str) -> None:
    """The translation's errors are not cached away: a bad filter is a 400 naming ``filter`` on every request."""
    for _ in range(2):
        response = client.get(ITEMS, params=params)
        assert response.status_code == 400, response.text
        assert response.json()["param"] == param
