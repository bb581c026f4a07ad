"""/facilities/{radius,nearest,area,catchment}: GeoJSON and JSON bodies, paging links, every filter as a query
parameter and every error as an RFC 9457 problem. Runs on the hand-written fixture inside the rolled-back
test transaction (the app's session is overridden to use it), plus one check on the real Seoul data."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine

from api.app import create_app
from api.schemas.facilities import FacilityFeatureCollection, FacilityList
from geo.search import FacilityFilters, radius_search
from geo.settings import Settings
from tests.dbutil import client_on
from tests.search_data import (
    BY_KEY,
    CENTRES,
    LAT,
    LON,
    OPERATING,
    Centre,
    expected_keys,
    insert_search_fixture,
)

PROBLEM = "application/problem+json"


class Client:
    """A TestClient plus the fixture's ids."""

    def __init__(self, client: TestClient, ids: dict[str, int]) -> None:
        self.http = client
        self.ids = ids
        self.keys_by_id = {v: k for k, v in ids.items()}

    def get(self, path: str, params: Any = None) -> Any:
        return self.http.get(path, params=params)

    def keys(self, body: dict) -> list[str]:
        if "features" in body:
            return [self.keys_by_id.get(f["id"], f"?{f['id']}") for f in body["features"]]
        return [self.keys_by_id.get(i["id"], f"?{i['id']}") for i in body["items"]]


@pytest.fixture()
def client(settings: Settings, engine: Engine, connection: Connection) -> Iterator[Client]:
    ids = insert_search_fixture(connection)
    with client_on(settings, connection) as http:
        yield Client(http, ids)


BASE = {"lat": LAT, "lon": LON}


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


# --- bodies ---------------------------------------------------------------------------------------------------


def test_radius_geojson_is_rfc7946_with_vacancy(client: Client) -> None:
    response = client.get("/facilities/radius", {**BASE, "radius_m": 1000})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    FacilityFeatureCollection.model_validate(body)
    assert body["type"] == "FeatureCollection"
    assert client.keys(body) == expected_keys(1000)
    assert body["numberMatched"] == body["numberReturned"] == 3
    assert [link["rel"] for link in body["links"]] == ["self", "alternate"]
    assert body["query"] == {"lat": LAT, "lon": LON, "radius_m": 1000.0}
    for feature in body["features"]:
        centre = BY_KEY[client.keys_by_id[feature["id"]]]
        lon, lat = feature["geometry"]["coordinates"]
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
        # RFC 7946: longitude first; at most 7 decimals.
        assert lon == pytest.approx(centre.lonlat[0], abs=1e-7) and lat == pytest.approx(centre.lonlat[1], abs=1e-7)
        assert _decimals(lon) <= 7 and _decimals(lat) <= 7
        props = feature["properties"]
        assert props["free_by_age"] == centre.free_by_age
        assert props["distance_m"] == pytest.approx(centre.distance_m, abs=0.05)
        assert set(props["services"]) == set(centre.services)
        assert (props["facility_type"], props["status"]) == (centre.facility_type, centre.status)
        assert (props["capacity"], props["enrolled"], props["geocode_quality"]) == (20, 10, "source")
        assert props["has_bus"] == centre.has_bus and props["cctv_count"] == centre.cctv_count
    a = body["features"][0]["properties"]
    assert (a["facility_type_ko"], a["status_ko"], a["services_ko"]) == ("국공립", "정상", ["장애아통합", "야간연장"])


def test_compact_json(client: Client) -> None:
    response = client.get("/facilities/radius", {**BASE, "radius_m": 1000, "f": "json"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    FacilityList.model_validate(body)
    assert client.keys(body) == expected_keys(1000)
    item = body["items"][0]
    assert (item["lon"], item["lat"]) == pytest.approx(BY_KEY["A"].lonlat, abs=1e-7)
    assert item["free_by_age"] == BY_KEY["A"].free_by_age and item["distance_m"] == pytest.approx(100, abs=0.05)
    alternate = next(link for link in body["links"] if link["rel"] == "alternate")
    assert alternate["type"] == "application/geo+json" and "f=geojson" in alternate["href"]


def test_next_links_walk_every_page_and_keep_repeated_parameters(client: Client) -> None:
    params = [("lat", LAT), ("lon", LON), ("radius_m", 6000), ("service", "extended_hours"),
              ("service", "hourly"), ("service_match", "any"), ("limit", 2)]
    body = client.get("/facilities/radius", params).json()
    seen = client.keys(body)
    pages = 1
    while (nxt := next((link for link in body["links"] if link["rel"] == "next"), None)) is not None:
        assert nxt["href"].count("service=") == 2 and "limit=2" in nxt["href"]
        body = client.http.get(nxt["href"]).json()
        assert body["numberMatched"] == 4
        assert any(link["rel"] == "prev" for link in body["links"])
        seen += client.keys(body)
        pages += 1
    assert seen == expected_keys(
        6000, lambda c: c.status in OPERATING and bool({"extended_hours", "hourly"} & set(c.services)))
    assert pages == 2


def test_page_past_the_end_still_counts(client: Client) -> None:
    body = client.get("/facilities/radius", {**BASE, "radius_m": 1000, "offset": 10}).json()
    assert body["features"] == [] and body["numberMatched"] == 3 and body["numberReturned"] == 0
    assert not any(link["rel"] == "next" for link in body["links"])


# --- every filter as a query parameter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ([("service", "twenty_four_hour")], lambda c: "twenty_four_hour" in c.services),
        ([("service", "twenty_four_hour"), ("service", "holiday")], lambda c: {"twenty_four_hour",
            "holiday"} <= set(c.services)),
        ([("service", "24시간,휴일보육")], lambda c: {"twenty_four_hour", "holiday"} <= set(c.services)),
        ([("service", "야간연장형")], lambda c: "extended_hours" in c.services),
        ([("service", "장애아통합")], lambda c: "disability_integrated" in c.services),
        ([("service", "disability_specialised")], lambda c: "disability_specialised" in c.services),
        ([("service", "다문화")], lambda c: "multicultural" in c.services),
        ([("service", "infant_only")], lambda c: "infant_only" in c.services),
        ([("service", "hourly")], lambda c: "hourly" in c.services),
        ([("service", "twenty_four_hour"), ("service", "hourly"), ("service_match", "any")],
         lambda c: bool({"twenty_four_hour", "hourly"} & set(c.services))),
        ([("type", "home"), ("type", "민간")], lambda c: c.facility_type in {"home", "private"}),
        ([("age", 2)], lambda c: (c.free_by_age or {}).get("2", 0) >= 1),
        ([("age", 2), ("min_free", 4)], lambda c: (c.free_by_age or {}).get("2", 0) >= 4),
        # A child born a month ago is in the 만0세반 whatever today is.
        ([("birth_date", (date.today() - timedelta(days=30)).isoformat())],
         lambda c: (c.free_by_age or {}).get("0", 0) >= 1),
        ([("open_at", "2026-07-22T21:00:00")], lambda c: bool({"twenty_four_hour",
            "extended_hours"} & set(c.services))),
        ([("open_at", "2026-07-26T10:00:00+09:00")], lambda c: bool({"twenty_four_hour", "holiday"} & set(c.services))),
        ([("has_bus", "true")], lambda c: c.has_bus is True),
        ([("has_bus", "false")], lambda c: c.has_bus is not True),
        ([("cctv", "true")], lambda c: (c.cctv_count or 0) > 0),
        ([("cctv", "false")], lambda c: not c.cctv_count),
        ([("name", "별님")], lambda c: "별님" in c.name),
        ([("name", "100%")], lambda c: "100%" in c.name),
        ([("service", "extended_hours"), ("age", 3), ("cctv", "true"), ("type", "social_welfare")],
         lambda c: "extended_hours" in c.services and (c.free_by_age or {}).get("3", 0) >= 1
         and (c.cctv_count or 0) > 0 and c.facility_type == "social_welfare"),
    ],
)
def test_filter_parameters(client: Client, params: list, keep: Callable[[Centre], bool]) -> None:
    for endpoint, extra in (("/facilities/radius", [("radius_m", 6000)]),
                            ("/facilities/nearest", [("k", 20), ("max_distance_m", 6000)])):
        response = client.get(endpoint, [("lat", LAT), ("lon", LON), *extra, *params])
        assert response.status_code == 200, response.json()
        assert client.keys(response.json()) == expected_keys(6000, lambda c: c.status in OPERATING and keep(c))


@pytest.mark.parametrize(
    ("status", "expected"),
    [("all", {"active", "reopened", "suspended", "closed"}), ("suspended", {"suspended"}),
     ("정상,폐지", {"active", "closed"}), ("operating", OPERATING)],
)
def test_status_parameter(client: Client, status: str, expected: set[str]) -> None:
    body = client.get("/facilities/radius", {**BASE, "radius_m": 6000, "status": status}).json()
    assert client.keys(body) == expected_keys(6000, lambda c: c.status in expected)


def test_birth_date_is_placed_by_todays_class_year(client: Client) -> None:
    from geo.validation import child_age

    # Whatever today is, the API agrees with child_age(today) for a child born two years ago.
    born = date.today().replace(day=1).replace(year=date.today().year - 2)
    body = client.get("/facilities/radius", {**BASE, "radius_m": 6000, "birth_date": born.isoformat()}).json()
    age = str(child_age(birth_date=born))
    assert client.keys(body) == expected_keys(
        6000, lambda c: c.status in OPERATING and (c.free_by_age or {}).get(age, 0) >= 1)


# --- nearest, area, catchment ------------------------------------------------------------------------------


def test_nearest(client: Client) -> None:
    body = client.get("/facilities/nearest", {**BASE, "k": 2, "max_distance_m": 3000, "count": "exact"}).json()
    assert client.keys(body) == ["A", "B"]
    assert body["numberMatched"] == len(expected_keys(3000)) and body["query"]["k"] == 2
    # Without count=exact a page that does not reach the end leaves numberMatched out (nothing is counted).
    assert "numberMatched" not in client.get("/facilities/nearest", {**BASE, "k": 2}).json()
    nxt = next(link for link in body["links"] if link["rel"] == "next")
    assert re.search(r"offset=2(&|$)", nxt["href"]) and "k=2" in nxt["href"]
    assert client.keys(client.http.get(nxt["href"]).json()) == expected_keys(3000)[2:4]
    default = client.get("/facilities/nearest", {**BASE, "count": "exact"}).json()
    # k defaults to 10; other data in the database may follow the six operating fixture centres.
    assert default["numberReturned"] == min(10, default["numberMatched"])
    assert client.keys(default)[:6] == ["A", "B", "C", "F", "G", "H"]


def test_area(client: Client) -> None:
    body = client.get("/facilities/area", {"district": "가상구", "f": "json"}).json()
    assert set(client.keys(body)) == {"A", "B", "C", "F", "G"}
    assert body["query"]["area"]["kind"] == "district" and body["query"]["area"]["district_code"] == "99901"
    assert all(item["distance_m"] is None for item in body["items"])
    east = client.get("/facilities/area", {"district": "가상구", "dong": "가상1동", **BASE}).json()
    assert client.keys(east) == ["A", "B", "F"]
    assert east["query"]["area"]["kostat_code"] == "9990101"
    west = client.get("/facilities/area", {"dong": "9990152000", "status": "all"}).json()
    assert set(client.keys(west)) == {"C", "D", "G"}


def test_catchment(client: Client) -> None:
    body = client.get("/facilities/catchment", BASE).json()
    radii = Settings().search.catchment_radius_m
    assert client.keys(body) == [c.key for c in sorted(CENTRES, key=lambda c: c.distance_m)
                                 if c.status in OPERATING and c.distance_m <= radii[c.facility_type]]
    assert body["query"]["catchment_radius_m"] == radii
    infant = client.get("/facilities/catchment", {**BASE, "age": 1, "min_free": 0}).json()
    factor = Settings().search.catchment_infant_factor
    assert client.keys(infant) == [c.key for c in sorted(CENTRES, key=lambda c: c.distance_m)
                                   if c.status in OPERATING and c.distance_m <= radii[c.facility_type] * factor]
    for feature in infant["features"]:
        props = feature["properties"]
        assert props["catchment_radius_m"] == pytest.approx(radii[props["facility_type"]] * factor)


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/facilities/radius", {"lat": 127.0, "lon": 37.5, "radius_m": 500}, 422, "swapped?"),
        ("/facilities/radius", {"lat": 95, "lon": 127, "radius_m": 500}, 422, "between -90 and 90"),
        ("/facilities/radius", {"lat": 37.5, "lon": 200, "radius_m": 500}, 422, "between -180 and 180"),
        ("/facilities/radius", {"lat": 35.0, "lon": 140.0, "radius_m": 500}, 422, "outside Korea"),
        ("/facilities/radius", {"lat": 41.0, "lon": 127.0, "radius_m": 500}, 422, "outside Korea"),
        ("/facilities/radius", {"lat": "nan", "lon": 127.0, "radius_m": 500}, 422, "finite"),
        ("/facilities/radius", {**BASE, "radius_m": 0}, 422, "radius_m must be a positive"),
        ("/facilities/radius", {**BASE, "radius_m": -10}, 422, "radius_m must be a positive"),
        ("/facilities/radius", {**BASE, "radius_m": 50_001}, 422, "at most 50000"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "service": "sauna"}, 422, "unknown service 'sauna'"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "service_match": "most"}, 422, "service_match"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "type": "palace"}, 422, "unknown facility type"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "status": "open"}, 422, "unknown status"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "limit": 501}, 422, "limit must be between 1 and 500"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "limit": 0}, 422, "query.limit: Input should be greater than or equal to 1"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "offset": -1}, 422, "offset"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "age": 6}, 422, "query.age: Input should be less than or equal to 5"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "age": -1}, 422, "query.age: Input should be greater than or equal to 0"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "birth_date": "2999-01-01"}, 422, "in the future"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "birth_date": "2010-01-01"}, 422, "만0-5세"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "age": 1, "birth_date": "2025-01-01"}, 422, "not both"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "min_free": -1}, 422, "min_free"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "name": "x" * 101}, 422, "at most 100"),
        # Malformed values never reach geo/: FastAPI's validation error, still a problem body.
        ("/facilities/radius", {"lon": 127.0, "radius_m": 500}, 422, "lat"),
        ("/facilities/radius", {"lat": "north", "lon": 127.0, "radius_m": 500}, 422, "lat"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "f": "xml"}, 422, "f"),
        ("/facilities/radius", {**BASE, "radius_m": 500, "open_at": "sometime"}, 422, "open_at"),
        ("/facilities/nearest", {"lat": 126.97, "lon": 37.56}, 422, "swapped?"),
        ("/facilities/nearest", {**BASE, "k": 0}, 422, "query.k: Input should be greater than or equal to 1"),
        ("/facilities/nearest", {**BASE, "k": 1000}, 422, "k must be between"),
        ("/facilities/nearest", {**BASE, "max_distance_m": 60_000}, 422, "max_distance_m"),
        ("/facilities/area", {}, 422, "district"),
        ("/facilities/area", {"dong": "가상1동"}, 422, "ambiguous"),
        ("/facilities/area", {"district": "가상구", "lat": LAT}, 422, "both lat and lon"),
        ("/facilities/area", {"district": "가상구", "limit": 501}, 422, "limit"),
        ("/facilities/area", {"district": "없는구"}, 404, "없는구"),
        ("/facilities/area", {"dong": "없는동"}, 404, "없는동"),
        ("/facilities/catchment", {"lat": 37.5, "lon": 131.9, "age": 9}, 422, "query.age: Input should be less than"),
        ("/facilities/catchment", {"lat": 33.0, "lon": 123.0}, 422, "outside Korea"),
    ],
)
def test_errors_are_problem_json(client: Client, path: str, params: dict, status: int, detail: str) -> None:
    response = client.get(path, params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    assert body["instance"] == path
    assert detail in body["detail"]


def test_ambiguous_dong_lists_candidates(client: Client) -> None:
    body = client.get("/facilities/area", {"dong": "가상1동"}).json()
    assert {(c["district_code"], c["kostat_code"]) for c in body["candidates"]} == {
        ("99901", "9990101"), ("99902", "9990201")}


def test_limits_come_from_settings(settings: Settings, engine: Engine, connection: Connection) -> None:
    insert_search_fixture(connection)
    small = settings.updated(DOLBOM_MAX_PAGE_LIMIT=2, DOLBOM_MAX_RADIUS_M=700.0)
    with client_on(small, connection) as http:
        assert http.get("/facilities/radius", params={**BASE, "radius_m": 600, "limit": 2}).status_code == 200
        too_far = http.get("/facilities/radius", params={**BASE, "radius_m": 800, "limit": 2}).json()
        too_many = http.get("/facilities/radius", params={**BASE, "radius_m": 600, "limit": 3}).json()
    assert "at most 700" in too_far["detail"] and "between 1 and 2" in too_many["detail"]


def test_openapi_documents_the_endpoints(client: Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/facilities/radius", "/facilities/nearest", "/facilities/area", "/facilities/catchment"):
        params = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"service", "service_match", "type", "status", "age", "birth_date", "open_at", "has_bus", "cctv",
                "name", "language", "f"} <= params
        body = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert {ref["$ref"] for ref in body["anyOf"]} == {"#/components/schemas/FacilityFeatureCollection",
                                                           "#/components/schemas/FacilityList",
                                                           "#/components/schemas/FacilityMarkerList"}
    assert {"FacilityFeature", "FacilityProperties", "Link"} <= set(spec["components"]["schemas"])


# --- real data ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_api_matches_geo_on_seoul(settings: Settings, seoul_engine: Engine) -> None:
    with TestClient(create_app(settings)) as http:
        body = http.get("/facilities/radius", params={"lat": 37.5563, "lon": 126.9220, "radius_m": 1000,
                                                       "service": "야간연장", "limit": 500}).json()
    with seoul_engine.connect() as conn:
        page = radius_search(conn, lat=37.5563, lon=126.9220, radius_m=1000, settings=settings,
                             filters=FacilityFilters.parse(services=["extended_hours"]), limit=500)
    assert [f["id"] for f in body["features"]] == [h.id for h in page.items] and page.items
    assert body["numberMatched"] == page.number_matched
    for feature, hit in zip(body["features"], page.items, strict=True):
        assert feature["geometry"]["coordinates"] == [round(hit.lon, 7), round(hit.lat, 7)]
        assert feature["properties"]["free_by_age"] == hit.free_by_age
