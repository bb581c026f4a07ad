"""OGC API - Features queries GIS users expect, on the real Seoul data: ``properties=`` (Part 6 draft), ``sortby=``
(Part 8 draft) with stable paging, queryables as plain query parameters (Part 3), ``POST .../search`` with a CQL2
JSON body, the export encodings (booleans, dates and string arrays per format, read back with pyogrio) and the
same array text in vector tiles; the OpenAPI document checked by the ``ogcapi-registry`` validator. Expected
results come from SQL written here."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import ogcapi_registry
import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.settings import Settings

ITEMS = "/ogc/collections/facilities/items"
SEARCH = "/ogc/collections/facilities/search"
EXPORT = "/ogc/collections/facilities/export"
PROBLEM = "application/problem+json"
# A part of 종로구/중구 with some hundreds of centres: small enough to page through in tests.
BOX = "126.96,37.55,127.0,37.58"
BOX_SQL = "ST_Intersects(geom_4326, ST_MakeEnvelope(126.96, 37.55, 127.0, 37.58, 4326))"


@pytest.fixture(scope="module")
def client(settings: Settings, seoul_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as http:
        yield http


def sql(engine: Engine, query: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(query), params))


def ids(body: dict[str, Any]) -> list[Any]:
    return [f["id"] for f in body["features"]]


def assert_problem(response: Any, param: str | None = None) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 400 and body["detail"]
    if param is not None:
        assert body.get("param") == param, body


def test_conformance_declares_the_query_classes(client: TestClient) -> None:
    declared = client.get("/ogc/conformance").json()["conformsTo"]
    for uri in ("http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
                "http://www.opengis.net/spec/ogcapi-features-6/1.0/conf/property-selection",
                "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting"):
        assert uri in declared


# --- properties= -------------------------------------------------------------------------------------------------

def test_properties_returns_only_those_and_keeps_the_geometry(client: TestClient) -> None:
    body = client.get(ITEMS, params={"properties": "name,capacity", "limit": 5}).json()
    assert len(body["features"]) == 5
    for feature in body["features"]:
        assert set(feature["properties"]) == {"name", "capacity"}
        assert feature["geometry"]["type"] == "Point" and feature["id"] is not None
    empty = client.get(ITEMS, params={"properties": "", "limit": 2}).json()
    assert [f["properties"] for f in empty["features"]] == [{}, {}]
    assert_problem(client.get(ITEMS, params={"properties": "name,colour"}), "properties")
    assert_problem(client.get(ITEMS, params={"properties": "geom_4326"}), "properties")


# --- sortby= -----------------------------------------------------------------------------------------------------

def test_sortby_orders_as_sql_with_the_id_breaking_ties(client: TestClient, seoul_engine: Engine) -> None:
    expected = [r[0] for r in sql(seoul_engine, f"SELECT id FROM facilities WHERE {BOX_SQL} "
                                                "ORDER BY capacity DESC, name, id LIMIT 40")]
    body = client.get(ITEMS, params={"bbox": BOX, "sortby": "-capacity,+name", "limit": 40}).json()
    assert ids(body) == expected
    capacities = [f["properties"]["capacity"] for f in body["features"] if f["properties"]["capacity"] is not None]
    assert capacities == sorted(capacities, reverse=True)
    # "+" unescaped in a query string arrives as a space: still ascending.
    raw = client.get(f"{ITEMS}?bbox={BOX}&sortby=+name&limit=5").json()
    assert ids(raw) == [r[0] for r in sql(seoul_engine, f"SELECT id FROM facilities WHERE {BOX_SQL} "
                                                        "ORDER BY name, id LIMIT 5")]


def test_sorted_pages_hold_every_feature_once(client: TestClient, seoul_engine: Engine) -> None:
    """facility_type has few values (long runs of ties): the id tie-break keeps pages apart; next keeps sortby."""
    expected = [r[0] for r in sql(seoul_engine, f"SELECT id FROM facilities WHERE {BOX_SQL} "
                                                "ORDER BY facility_type DESC, id")]
    assert len(expected) > 100
    seen: list[int] = []
    url: str | None = ITEMS
    params: dict[str, Any] | None = {"bbox": BOX, "sortby": "-facility_type", "limit": 37}
    while url:
        body = client.get(url, params=params).json()
        seen += ids(body)
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        params = None
        if url:
            assert "sortby=-facility_type" in url
    assert seen == expected and len(set(seen)) == len(seen)


def test_sortby_refuses_what_does_not_sort(client: TestClient) -> None:
    for value in ("colour", "-services", "name,name", "+", "geometry"):
        assert_problem(client.get(ITEMS, params={"sortby": value}), "sortby")
    sortables = client.get("/ogc/collections/facilities/sortables").json()["properties"]
    assert "services" not in sortables and "geometry" not in sortables
    assert {"id", "name", "capacity", "data_date", "has_bus"} <= set(sortables)
    links = client.get("/ogc/collections/facilities").json()["links"]
    assert any(link["href"].endswith("/sortables") for link in links)


# --- queryables as query parameters ------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "where"), [
    ({"capacity": "50"}, "capacity = 50"),
    ({"facility_type": "national_public", "capacity": "50"}, "facility_type = 'national_public' AND capacity = 50"),
    ([("facility_type", "home"), ("facility_type", "workplace")], "facility_type IN ('home', 'workplace')"),
    ({"has_bus": "true"}, "has_bus"),
    ({"data_date": "2026-07-21", "status": "active"}, "data_date = DATE '2026-07-21' AND status = 'active'"),
    ([("services", "holiday"), ("services", "extended_hours")], "services @> ARRAY['holiday', 'extended_hours']"),
    ({"facility_type": "national_public", "filter": "capacity > 100"},
     "facility_type = 'national_public' AND capacity > 100"),
    ({"name": "' OR 1=1 --"}, "name = ''' OR 1=1 --'"),
])
def test_queryables_as_parameters_filter_like_sql(client: TestClient, seoul_engine: Engine, params: Any,
                                                  where: str) -> None:
    expected = sql(seoul_engine, f"SELECT count(*) FROM facilities WHERE {where}")[0][0]
    query = [*(params.items() if isinstance(params, dict) else params), ("limit", "1")]
    response = client.get(ITEMS, params=query)
    assert response.status_code == 200, response.text
    assert response.json()["numberMatched"] == expected


@pytest.mark.parametrize(("params", "param"), [
    ({"capacity": "abc"}, "capacity"),
    ({"has_bus": "maybe"}, "has_bus"),
    ({"data_date": "yesterday"}, "data_date"),
    ({"foo": "bar"}, "foo"),
    ({"geometry": "POINT(127 37.5)"}, "geometry"),
    ({"places": "10"}, "places"),  # a queryable of districts, not of facilities
])
def test_only_queryables_with_valid_values_are_parameters(client: TestClient, params: dict, param: str) -> None:
    assert_problem(client.get(ITEMS, params=params), param)


def test_queryable_parameters_apply_to_exports(client: TestClient, seoul_engine: Engine, tmp_path: Path) -> None:
    expected = {r[0] for r in sql(seoul_engine, "SELECT id FROM facilities WHERE facility_type = 'national_public' "
                                                "AND has_bus")}
    response = client.get(EXPORT, params={"format": "csv", "facility_type": "national_public", "has_bus": "true",
                                          "properties": "name", "sortby": "-id"})
    assert response.status_code == 200, response.text
    path = tmp_path / "x.csv"
    path.write_bytes(response.content)
    frame = pyogrio.read_dataframe(path)
    assert [int(v) for v in frame["id"]] == sorted(expected, reverse=True)
    assert "name" in frame.columns and "capacity" not in frame.columns


# --- POST search -------------------------------------------------------------------------------------------------

def test_search_by_post_answers_what_get_items_does(client: TestClient) -> None:
    cql2 = {"op": "and", "args": [
        {"op": ">", "args": [{"property": "capacity"}, 80]},
        {"op": "a_contains", "args": [{"property": "services"}, ["extended_hours"]]},
        {"op": "s_intersects", "args": [{"property": "geometry"},
                                        {"type": "Polygon", "coordinates": [[[126.9, 37.5], [127.1, 37.5],
                                                                             [127.1, 37.6], [126.9, 37.5]]]}]}]}
    get = client.get(ITEMS, params={"filter": json.dumps(cql2), "filter-lang": "cql2-json", "sortby": "-capacity",
                                    "properties": "name,capacity", "limit": 7}).json()
    posted = client.post(SEARCH, json={"filter": cql2, "sortby": ["-capacity"], "properties": ["name", "capacity"],
                                       "limit": 7})
    assert posted.status_code == 200 and posted.headers["content-type"] == "application/geo+json"
    body = posted.json()
    assert body["features"] == get["features"] and body["numberMatched"] == get["numberMatched"] > 7
    # The next link carries the body to POST again: paging through gives every match once.
    seen = ids(body)
    link = next(link for link in body["links"] if link["rel"] == "next")
    while link:
        assert link["method"] == "POST"
        page = client.post(link["href"], json=link["body"]).json()
        seen += ids(page)
        link = next((link for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == body["numberMatched"]


def test_post_items_takes_the_cql2_json_filter_as_its_body(client: TestClient) -> None:
    """What OWSLib's collection_items(cql=...) sends: the filter as the body, the rest in the query string."""
    cql2 = {"op": "a_contains", "args": [{"property": "services"}, ["holiday"]]}
    params = {"facility_type": "national_public", "sortby": "-capacity", "limit": "5"}
    get = client.get(ITEMS, params={**params, "filter": json.dumps(cql2), "filter-lang": "cql2-json"}).json()
    posted = client.post(ITEMS, params=params, json=cql2)
    assert posted.status_code == 200, posted.text
    body = posted.json()
    assert body["features"] == get["features"] and body["numberMatched"] == get["numberMatched"] > 5
    following = next(link for link in body["links"] if link["rel"] == "next")
    assert following["method"] == "POST" and following["body"] == cql2 and "offset=5" in following["href"]
    second = client.post(following["href"], json=following["body"]).json()
    assert not set(ids(second)) & set(ids(body)) and second["numberMatched"] == body["numberMatched"]
    assert_problem(client.post(ITEMS, json={"op": "=", "args": [{"property": "colour"}, 1]}), "filter")
    assert_problem(client.post(ITEMS, params={"foo": "bar"}, json=cql2), "foo")
    assert_problem(client.post(ITEMS, json=[1]))


def test_search_takes_bbox_datetime_and_cql2_text(client: TestClient) -> None:
    get = client.get(ITEMS, params={"bbox": BOX, "datetime": "2026-07-21", "filter": "capacity >= 40",
                                    "limit": 50}).json()
    posted = client.post(SEARCH, json={"bbox": [float(v) for v in BOX.split(",")], "datetime": "2026-07-21",
                                       "filter": "capacity >= 40", "limit": 50}).json()
    assert ids(posted) == ids(get) and posted["numberMatched"] == get["numberMatched"] > 0


@pytest.mark.parametrize("body", [
    {"filter": {"op": "=", "args": [{"property": "colour"}, "red"]}},
    {"filter": {"op": "nope", "args": []}},
    {"filter": "capacity >"},
    {"limit": 0},
    {"limit": "abc"},
    {"bbox": [1, 2, 3]},
    {"sortby": "-services"},
    {"properties": ["colour"]},
    {"crs": "http://www.opengis.net/def/crs/EPSG/0/2097"},
    {"colour": "red"},
    [1, 2],
])
def test_bad_search_bodies_are_400_problems(client: TestClient, body: Any) -> None:
    assert_problem(client.post(SEARCH, json=body))


def test_search_refuses_a_body_that_is_not_json(client: TestClient) -> None:
    response = client.post(SEARCH, content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response)


# --- export encodings --------------------------------------------------------------------------------------------

def _export(client: TestClient, tmp_path: Path, fmt: str) -> Path:
    response = client.get(EXPORT, params={"format": fmt, "bbox": BOX})
    assert response.status_code == 200, response.text
    path = tmp_path / f"facilities.{fmt}"
    path.write_bytes(response.content)
    return path


def _truth(engine: Engine) -> dict[int, tuple[Any, ...]]:
    rows = sql(engine, f"SELECT id, has_bus, data_date, services FROM facilities WHERE {BOX_SQL}")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _array_text(services: list[str] | None) -> str | None:
    return None if services is None else json.dumps(services, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("fmt", ["gpkg", "fgb"])
def test_gpkg_and_fgb_write_booleans_dates_and_json_arrays(client: TestClient, seoul_engine: Engine,
                                                             tmp_path: Path, fmt: str) -> None:
    path = _export(client, tmp_path, fmt)
    info = pyogrio.read_info(path)
    types = dict(zip(info["fields"], zip(info["dtypes"], info["ogr_subtypes"], strict=True), strict=True))
    assert types["has_bus"] == ("bool", "OFSTBoolean")
    assert types["location_approximate"] == ("bool", "OFSTBoolean")
    # GeoPackage has a date type; FlatGeobuf has only DateTime (read back as a timestamp at midnight).
    assert types["data_date"][0] == ("datetime64[D]" if fmt == "gpkg" else "datetime64[ms]")
    if fmt == "gpkg":
        assert types["services"] == ("object", "OFSTJSON")
    frame = pyogrio.read_dataframe(path)
    truth = _truth(seoul_engine)
    assert sorted(int(i) for i in frame["id"]) == sorted(truth)
    for row in frame.itertuples():
        has_bus, data_date, services = truth[int(row.id)]
        assert (None if pd.isna(row.has_bus) else bool(row.has_bus)) == has_bus
        assert (None if pd.isna(row.data_date) else pd.Timestamp(row.data_date).date()) == data_date
        if fmt == "gpkg":  # GDAL reads a JSON field holding an array back as a list
            assert (None if row.services is None else list(row.services)) == services
        else:
            assert row.services == _array_text(services)


def test_csv_and_geojson_encodings(client: TestClient, seoul_engine: Engine, tmp_path: Path) -> None:
    truth = _truth(seoul_engine)
    csv = pd.read_csv(_export(client, tmp_path, "csv"), dtype=str, keep_default_na=False)
    for row in csv.itertuples():
        has_bus, data_date, services = truth[int(row.id)]
        assert row.has_bus == ("" if has_bus is None else "true" if has_bus else "false")
        assert row.data_date == ("" if data_date is None else data_date.isoformat())
        assert row.services == (_array_text(services) or "")
    geojson = json.loads(_export(client, tmp_path, "geojson").read_text())
    for feature in geojson["features"]:
        props = feature["properties"]
        has_bus, data_date, services = truth[int(props["id"])]
        assert props["has_bus"] == has_bus and props["services"] == services
        assert props["data_date"] == (None if data_date is None else data_date.isoformat())
    assert isinstance(next(f for f in geojson["features"] if f["properties"]["services"])["properties"]["services"],
                      list)


def test_tiles_carry_the_array_text_of_the_exports(client: TestClient, seoul_engine: Engine) -> None:
    fid, lon, lat, services = sql(seoul_engine, "SELECT id, ST_X(geom_4326), ST_Y(geom_4326), services FROM facilities "
                                                "WHERE cardinality(services) >= 2 ORDER BY id LIMIT 1")[0]
    z = 15
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    decoded = mapbox_vector_tile.decode(client.get(f"/tiles/facilities/{z}/{x}/{y}.mvt").content)
    feature = next(f for f in decoded["facilities"]["features"] if f["id"] == fid)
    assert feature["properties"]["services"] == _array_text(services)
    assert json.loads(feature["properties"]["services"]) == services


def test_identical_gpkg_exports_share_an_etag_and_revalidate_to_304(client: TestClient) -> None:
    params = {"format": "gpkg", "facility_type": "national_public", "sortby": "name"}
    first, second = client.get(EXPORT, params=params), client.get(EXPORT, params=params)
    assert first.status_code == second.status_code == 200
    assert first.headers["etag"] == second.headers["etag"]
    again = client.get(EXPORT, params=params, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


# --- the OpenAPI document against a validator ---------------------------------------------------------------------

def test_ogcapi_registry_finds_nothing_critical_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/ogc/api").json()
    declared = client.get("/ogc/conformance").json()["conformsTo"]
    result = ogcapi_registry.validate_ogc_api(document, declared)
    critical = [e for e in (*result.errors, *result.warnings) if e.get("severity", "critical") == "critical"]
    assert result.is_valid and not critical, critical
    assert ogcapi_registry.validate_document(document).is_valid
    assert "/collections/{collectionId}/search" in document["paths"]
    assert "/collections/{collectionId}/sortables" in document["paths"]
    parameters = {p["name"] for p in document["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]}
    assert {"properties", "sortby", "filter", "bbox", "limit"} <= parameters
    # Every class it declares is one the validator's catalogue knows, or a CQL2 / draft class we name on purpose,
    # or a class of the Tile Matrix Set standard (OGC 17-083r4, which OGC API - Tiles builds on and the
    # validator's catalogue does not list).
    report = ogcapi_registry.validate_conformance(declared)
    assert all("/cql2/" in uri or "features-6" in uri or "features-8" in uri or "/spec/tms/2.0/conf/" in uri
               for uri in report.unrecognised), report.unrecognised



@pytest.mark.parametrize("fmt", ["gpkg", "fgb", "csv", "geojson"])
def test_an_export_matching_nothing_is_an_empty_typed_file(client: TestClient, tmp_path: Path, fmt: str) -> None:
    """Found by schemathesis: no row (or a column of nulls only) gave Arrow null columns that GDAL refused (500)."""
    response = client.get(EXPORT, params={"format": fmt, "filter": "capacity < 0"})
    assert response.status_code == 200, response.text
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(response.content)
    info = pyogrio.read_info(path)
    assert info["features"] in (0, -1)
    if fmt in ("gpkg", "fgb"):
        types = dict(zip(info["fields"], info["dtypes"], strict=True))
        assert types["has_bus"] == "bool" and types["capacity"] == "int64"


@pytest.mark.parametrize("layer_id", ["facilities", "districts", "admin_dongs", "blind_spots"])
@pytest.mark.parametrize("fmt", ["gpkg", "fgb"])
def test_every_layer_exports_with_the_counts_of_items(client: TestClient, tmp_path: Path, layer_id: str,
                                                      fmt: str) -> None:
    matched = client.get(f"/ogc/collections/{layer_id}/items", params={"limit": 1}).json()["numberMatched"]
    response = client.get(f"/ogc/collections/{layer_id}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    path = tmp_path / f"{layer_id}.{fmt}"
    path.write_bytes(response.content)
    assert len(pyogrio.read_dataframe(path)) == matched


def test_district_statistics_are_queryables_and_filter_like_sql(client: TestClient, seoul_engine: Engine) -> None:
    body = client.get("/ogc/collections/districts/queryables").json()
    for name in ("centres_national_public", "centres_home", "free_age_0", "free_age_5", "staff_total",
                 "staff_teacher", "cctv_cameras", "centres_with_cctv", "centres_with_bus"):
        assert body["properties"][name]["type"] == "integer", name
    expected = sql(seoul_engine, "SELECT count(*) FROM (SELECT district_code FROM facilities "
                                 "WHERE status IN ('active', 'reopened') AND facility_type = 'national_public' "
                                 "GROUP BY district_code HAVING count(*) > 80) t")[0][0]
    response = client.get("/ogc/collections/districts/items",
                          params={"filter": "centres_national_public > 80", "limit": 30})
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert len(features) == expected and 0 < expected < 25
    assert all(f["properties"]["centres_national_public"] > 80 for f in features)
