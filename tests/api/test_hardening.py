"""Bad input never gets past a 422 problem+json: control characters in every string parameter, huge integers and
floats, over-long values; Hangul in either Unicode normal form finds the same; the OpenAPI document says so
(bounds, problem+json errors); security headers on every kind of response; ``prev`` links never point past the
end. Hand-made cases on the search fixture, and on the real Seoul data for the NFC/NFD equivalence."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from geo.admission.tlog import MAX_LOG_SIZE
from geo.settings import Settings
from geo.validation import MAX_ID, MAX_OFFSET
from tests.dbutil import client_on
from tests.problem_util import problem as _problem
from tests.search_data import BY_KEY, LAT, LON, expected_keys, insert_search_fixture

PROBLEM = "application/problem+json"
RADIUS = {"lat": LAT, "lon": LON, "radius_m": 1000}

# Every string query parameter, with the rest of a request that would otherwise succeed (or fail later).
STRING_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    ("/facilities/radius", RADIUS, "name"),
    ("/facilities/radius", RADIUS, "service"),
    ("/facilities/radius", RADIUS, "type"),
    ("/facilities/radius", RADIUS, "status"),
    ("/facilities/nearest", {"lat": LAT, "lon": LON}, "name"),
    ("/facilities/catchment", {"lat": LAT, "lon": LON}, "service"),
    ("/facilities/area", {"district": "가상구"}, "name"),
    ("/facilities/area", {}, "district"),
    ("/facilities/area", {}, "dong"),
    ("/facilities/area", {"district": "가상구"}, "dong"),
    ("/places/search", {}, "q"),
    ("/isochrones", {"lat": LAT, "lon": LON, "minutes": 10}, "network"),
    ("/isochrones", {"lat": LAT, "lon": LON, "minutes": 10}, "status"),
]
CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x85", "\x9f"]


@pytest.fixture()
def client(settings: Settings, engine: Engine, connection: Connection) -> Iterator[TestClient]:
    insert_search_fixture(connection)
    with client_on(settings, connection) as http:
        yield http


# --- control characters, NFC -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "base", "param"), STRING_PARAMS, ids=[f"{p}:{n}" for p, _, n in STRING_PARAMS])
def test_control_characters_in_every_string_parameter_are_422(client: TestClient, path: str, base: dict,
                                                               param: str) -> None:
    for char in CONTROL_CHARACTERS:
        for value in (f"마포{char}구", char, f"hourly{char}"):
            body = _problem(client.get(path, params={**base, param: value}))
            assert body["param"] == param, (char, body)
            assert "control characters" in body["detail"]


# The OGC API, tile and live-vacancy text parameters (query and path); ``{}`` marks where the value goes.
OGC_TEXT_PARAMS: list[tuple[str, str]] = [
    *((f"/ogc/collections/facilities/{what}?{param}={{}}", param)
      for what in ("items", "export") for param in ("bbox", "bbox-crs", "datetime", "filter", "filter-crs", "crs")),
    ("/ogc/collections/facilities/items/1?crs={}", "crs"),
    ("/ogc/collections/fac{}ilities/items", "collection_id"),
    ("/ogc/collections/facilities/items/1{}", "feature_id"),
    ("/ogc/collections/districts/items/11110{}", "feature_id"),  # a text id: bound into SQL
    ("/tiles/fac{}ilities/14/13969/6344.mvt", "layer_id"),
    ("/tiles/a{}ll/tilejson.json", "layer_id"),
    ("/vacancy/stream?bbox={}", "bbox"),
    ("/vacancy/stream?district={}", "district"),
    ("/vacancy/stream?code=1&code={}", "code"),
    ("/vacancy/centres/1{}", "code"),
]


@pytest.mark.parametrize(("template", "param"), OGC_TEXT_PARAMS, ids=[t for t, _ in OGC_TEXT_PARAMS])
def test_control_characters_in_ogc_tile_and_vacancy_parameters_are_422(client: TestClient, template: str,
                                                                      param: str) -> None:
    # A pretty-printed CQL2 JSON filter may hold line breaks and tabs; nothing else may.
    chars = [c for c in CONTROL_CHARACTERS if param != "filter" or c not in "\t\n"]
    status = 400 if template.startswith("/ogc/") else 422  # OGC API - Features: an invalid parameter is a 400
    for char in chars:
        body = _problem(client.get(template.format(quote(f"x{char}y", safe=""))), status)
        assert body["param"] == param, (char, body)
        assert "control characters" in body["detail"]


def test_control_character_in_a_repeated_value_names_the_parameter(client: TestClient) -> None:
    params = [("lat", LAT), ("lon", LON), ("radius_m", 500), ("service", "hourly"), ("service", "holi\x00day")]
    assert _problem(client.get("/facilities/radius", params=params))["param"] == "service"


@pytest.mark.parametrize("param", ["birth_date", "open_at", "f", "count", "service_match", "age", "limit", "offset",
                                   "has_bus", "cctv", "min_free", "radius_m", "lat"])
def test_nul_in_typed_parameters_is_422_naming_it(client: TestClient, param: str) -> None:
    body = _problem(client.get("/facilities/radius", params={**RADIUS, param: "1\x00"}))
    assert body["param"] == param
    assert [error["loc"] for error in body["errors"]] == [["query", param]]


def test_blank_and_non_breaking_space_are_not_control_characters(client: TestClient) -> None:
    # U+00A0 and U+3000 (ideographic space, common in Korean input) are spaces, not control characters.
    for value in ("가상\u00a0", "\u3000가상"):
        response = client.get("/facilities/radius", params={**RADIUS, "name": value})
        assert response.status_code == 200, response.text


@pytest.mark.slow
def test_decomposed_hangul_finds_the_same_as_composed(settings: Settings, seoul_engine: Engine) -> None:
    with seoul_engine.connect() as conn:
        mapo_total = conn.execute(text(
            "SELECT count(*) FROM facilities f JOIN districts d ON ST_Covers(d.geom_4326, f.geom_4326) "
            "WHERE d.name = '마포구' AND f.status IN ('active', 'reopened')")).scalar_one()
        fragment = conn.execute(text(
            "SELECT substr(name, 1, 2) FROM facilities WHERE status = 'active' AND name ~ '^[가-힣]{2}' "
            "ORDER BY id LIMIT 1")).scalar_one()
    nfd_district = unicodedata.normalize("NFD", "마포구")
    nfd_fragment = unicodedata.normalize("NFD", fragment)
    assert nfd_district != "마포구" and len(nfd_district) > 3 and nfd_fragment != fragment
    with TestClient(create_app(settings)) as http:
        def ids(path: str, params: dict[str, Any]) -> list[int]:
            response = http.get(path, params={**params, "f": "json", "limit": 500, "count": "exact"})
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["items"]]

        composed = ids("/facilities/area", {"district": "마포구"})
        assert len(composed) == min(500, mapo_total) > 0
        assert ids("/facilities/area", {"district": nfd_district}) == composed
        # Extra blanks around the name are stripped too.
        assert ids("/facilities/area", {"district": f"  {nfd_district} "}) == composed
        seoul = {"lat": 37.5665, "lon": 126.9780, "radius_m": 50_000}
        by_name = ids("/facilities/radius", {**seoul, "name": fragment})
        assert by_name and ids("/facilities/radius", {**seoul, "name": nfd_fragment}) == by_name
        places = http.get("/places/search", params={"q": "마포구"}).json()
        assert places["places"] and http.get("/places/search", params={"q": nfd_district}).json() == places


# --- huge numbers and long strings -------------------------------------------------------------------------


HUGE = [2**63, 2**63 - 1, 2**64, 10**30, -(2**63) - 1]


@pytest.mark.parametrize(("path", "base", "param"), [
    ("/facilities/radius", RADIUS, "offset"),
    ("/facilities/radius", RADIUS, "limit"),
    ("/facilities/radius", RADIUS, "min_free"),
    ("/facilities/radius", RADIUS, "age"),
    ("/facilities/nearest", {"lat": LAT, "lon": LON}, "k"),
    ("/facilities/nearest", {"lat": LAT, "lon": LON}, "offset"),
    ("/facilities/area", {"district": "가상구"}, "offset"),
    ("/facilities/catchment", {"lat": LAT, "lon": LON}, "offset"),
    ("/places/search", {"q": "가상"}, "limit"),
    ("/isochrones", {"lat": LAT, "lon": LON, "minutes": 10}, "limit"),
])
def test_huge_integers_are_422(client: TestClient, path: str, base: dict, param: str) -> None:
    for value in HUGE:
        body = _problem(client.get(path, params={**base, param: value}))
        assert body["param"] == param, body


def test_offset_bound_is_inclusive(client: TestClient) -> None:
    at_bound = client.get("/facilities/radius", params={**RADIUS, "offset": MAX_OFFSET})
    assert at_bound.status_code == 200 and at_bound.json()["features"] == []
    _problem(client.get("/facilities/radius", params={**RADIUS, "offset": MAX_OFFSET + 1}))


@pytest.mark.parametrize(("param", "value"), [
    ("radius_m", "1e309"), ("radius_m", "inf"), ("radius_m", "-inf"), ("radius_m", "nan"), ("radius_m", "1e-400"),
    ("lat", "1e309"), ("lon", "-1e309"), ("lat", "1e308"),
])
def test_non_finite_and_huge_floats_are_422(client: TestClient, param: str, value: str) -> None:
    body = _problem(client.get("/facilities/radius", params={**RADIUS, param: value}))
    assert param in body["param"]


@pytest.mark.parametrize(("path", "base", "param"), STRING_PARAMS, ids=[f"{p}:{n}" for p, _, n in STRING_PARAMS])
def test_over_long_strings_are_422(client: TestClient, path: str, base: dict, param: str) -> None:
    body = _problem(client.get(path, params={**base, param: "가" * 5000}))
    assert body["param"] == param


def test_too_many_list_values_are_422(client: TestClient) -> None:
    repeated = [("lat", LAT), ("lon", LON), ("radius_m", 500)] + [("service", "hourly")] * 21
    assert _problem(client.get("/facilities/radius", params=repeated))["param"] == "service"
    comma = ",".join(["hourly"] * 21)
    assert _problem(client.get("/facilities/radius", params={**RADIUS, "service": comma}))["param"] == "service"


# --- OpenAPI ----------------------------------------------------------------------------------------------


def _spec(settings: Settings) -> dict[str, Any]:
    return dict(create_app(settings).openapi())


def _schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A parameter schema and its alternatives / array items."""
    found = [schema]
    for alternative in schema.get("anyOf", []):
        found += _schemas(alternative)
    if "items" in schema:
        found += _schemas(schema["items"])
    return found


def test_openapi_bounds_every_string_and_integer_parameter(settings: Settings) -> None:
    spec = _spec(settings)
    checked = 0
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                for schema in _schemas(parameter["schema"]):
                    where = f"{path} {parameter['name']}"
                    if schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
                        assert schema.get("maxLength", 10**6) <= 8000, where
                        checked += 1
                    if schema.get("type") == "integer":
                        # Row ids in a path reach PostgreSQL's integer range; counts and offsets stay smaller;
                        # positions in the public waitlist log reach its largest size (it only grows).
                        bound = MAX_ID if parameter["in"] == "path" else MAX_OFFSET
                        if path.startswith("/waitlist/log/"):
                            bound = MAX_LOG_SIZE
                        assert "minimum" in schema and schema.get("maximum", 2**63) <= bound, where
                        checked += 1
                    if schema.get("type") == "array":
                        assert schema.get("maxItems", 10**6) <= 20, where
    assert checked >= 30


def test_openapi_documents_lat_lon_ranges_limits_and_age_xor_birth_date(settings: Settings) -> None:
    spec = _spec(settings)
    for path in ("/facilities/radius", "/facilities/nearest", "/facilities/catchment", "/places/reverse"):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert (params["lat"]["schema"]["minimum"], params["lat"]["schema"]["maximum"]) == (33, 39)
        assert (params["lon"]["schema"]["minimum"], params["lon"]["schema"]["maximum"]) == (124, 132)
    radius = {p["name"]: p for p in spec["paths"]["/facilities/radius"]["get"]["parameters"]}
    assert radius["limit"]["schema"]["maximum"] == settings.search.max_page_limit
    assert radius["radius_m"]["schema"]["maximum"] == settings.search.max_radius_m
    assert radius["radius_m"]["schema"]["exclusiveMinimum"] == 0
    assert radius["offset"]["schema"]["maximum"] == MAX_OFFSET
    assert "not both" in radius["age"]["description"] and "instead of age" in radius["birth_date"]["description"]
    small = _spec(settings.updated(DOLBOM_MAX_PAGE_LIMIT=7, DOLBOM_MAX_RADIUS_M=900.0))
    nearest = {p["name"]: p for p in small["paths"]["/facilities/nearest"]["get"]["parameters"]}
    assert nearest["k"]["schema"]["maximum"] == 7
    assert 900.0 in [s.get("maximum") for s in _schemas(nearest["max_distance_m"]["schema"])]
    places = {p["name"]: p for p in small["paths"]["/places/search"]["get"]["parameters"]}
    assert places["limit"]["schema"]["maximum"] == 7  # the tighter of 50 and the setting


def test_openapi_errors_are_problem_json(settings: Settings) -> None:
    spec = _spec(settings)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["properties"])
    assert '"HTTPValidationError"' not in str(spec) and "#/components/schemas/ValidationError" not in str(spec)
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            responses = operation["responses"]
            assert "503" in responses and "Retry-After" in responses["503"]["headers"], path
            if path.startswith("/ogc"):  # OGC API - Features: a bad or unknown parameter is a 400, never a 422
                assert "400" in responses and "422" not in responses, path
            elif operation.get("parameters"):
                assert "422" in responses, path
            for status, response in responses.items():
                if status[0] in "45":
                    assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert "404" in spec["paths"]["/facilities/area"]["get"]["responses"]
    assert "404" in spec["paths"]["/places/reverse"]["get"]["responses"]
    assert "409" in spec["paths"]["/isochrones"]["get"]["responses"]
    radius_200 = spec["paths"]["/facilities/radius"]["get"]["responses"]["200"]["content"]
    assert radius_200["application/geo+json"]["schema"] == {"$ref": "#/components/schemas/FacilityFeatureCollection"}


# --- security headers --------------------------------------------------------------------------------------


def _assert_security_headers(response: Any) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    csp = {d.strip().split(" ")[0]: d.strip() for d in headers["content-security-policy"].split(";")}
    assert csp["frame-ancestors"] == "frame-ancestors 'none'", response.url
    assert csp["object-src"] == "object-src 'none'"
    assert "'unsafe-eval'" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"]


def test_security_headers_on_every_kind_of_response(settings: Settings, client: TestClient, tmp_path) -> None:
    responses = [
        client.get("/"), client.get("/static/map.js"), client.get("/openapi.json"), client.get("/docs"),
        client.get("/facilities/radius", params=RADIUS),
        client.get("/facilities/radius", params={**RADIUS, "name": "\x00"}),
        client.get("/facilities/area", params={"district": "없는구"}),
        client.get("/no-such-thing"), client.post("/facilities/radius"),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 200, 200, 422, 404, 404, 405]
    for response in responses:
        _assert_security_headers(response)
    # The page's policy: scripts only from this origin, no inline script.
    page_csp = responses[0].headers["content-security-policy"]
    assert "script-src 'self';" in page_csp and "default-src 'self'" in page_csp
    # A server error and a database that is down answer with the headers too.
    app = create_app(settings)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as http:
        failed = http.get("/boom")
    assert failed.status_code == 500 and failed.headers["content-type"].startswith(PROBLEM)
    _assert_security_headers(failed)
    down = Settings(DATABASE_URL=f"postgresql://postgres@/nowhere?host={tmp_path}&port=1", DOLBOM_DB_TIMEOUT_S=1)
    with TestClient(create_app(down), raise_server_exceptions=False) as http:
        unavailable = http.get("/facilities/radius", params=RADIUS)
    assert unavailable.status_code == 503
    _assert_security_headers(unavailable)


# --- prev links --------------------------------------------------------------------------------------------


def _link(body: dict[str, Any], rel: str) -> str | None:
    return next((link["href"] for link in body["links"] if link["rel"] == rel), None)


def _offset(href: str) -> int:
    return int(parse_qs(urlsplit(href).query)["offset"][0])


@pytest.mark.parametrize(("path", "params", "size"), [
    ("/facilities/radius", {**RADIUS, "limit": 2}, "limit"),
    ("/facilities/nearest", {"lat": LAT, "lon": LON, "k": 2, "max_distance_m": 1000}, "k"),
])
def test_prev_from_past_the_end_walks_back_through_real_pages(client: TestClient, path: str, params: dict,
                                                              size: str) -> None:
    keys = expected_keys(1000)  # independent of SQL: the fixture table
    total, page_size = len(keys), params[size]
    assert total == 3
    for start in (total, total + 1, 10, 999, MAX_OFFSET):
        body = client.get(path, params={**params, "offset": start}).json()
        assert body["numberReturned"] == 0 and body["numberMatched"] == total
        assert _link(body, "next") is None
        prev = _link(body, "prev")
        assert prev is not None
        # The page before a page past the end holds the last match: it is neither empty nor past the end.
        assert _offset(prev) < total <= _offset(prev) + page_size
        offsets = []
        while prev is not None:
            offsets.append(_offset(prev))
            assert offsets[-1] < total
            page = client.get(prev).json()
            assert 0 < page["numberReturned"] <= page_size
            assert [f["properties"]["name"] for f in page["features"]] == [
                BY_KEY[k].name for k in keys[offsets[-1]:offsets[-1] + page_size]]
            prev = _link(page, "prev")
        # Back by one page size each time, down to the first page.
        assert offsets == [max(0, offsets[0] - i * page_size) for i in range(len(offsets))] and offsets[-1] == 0


def test_prev_of_a_partial_page_stays_in_range(client: TestClient) -> None:
    # offset 1 with limit 2: the page before starts at 0, not at -1; offset 10 with limit 2 and 3 matches steps
    # back to 2 (the last page), not to 8.
    first = client.get("/facilities/radius", params={**RADIUS, "limit": 2, "offset": 1}).json()
    assert first["numberReturned"] == 2 and _offset(_link(first, "prev") or "") == 0
    past = client.get("/facilities/radius", params={**RADIUS, "limit": 2, "offset": 10}).json()
    assert _offset(_link(past, "prev") or "") == 2
    assert _link(client.get("/facilities/radius", params={**RADIUS, "limit": 2}).json(), "prev") is None


@pytest.mark.parametrize(("path", "params"), [
    ("/facilities/radius", {**RADIUS, "open_at": "9999-12-31T23:59:59-12:00"}),
    ("/facilities/radius", {**RADIUS, "open_at": "0001-01-01T00:00:00+14:00"}),
    ("/facilities/radius", {**RADIUS, "open_at": "0001-01-01T00:00:00"}),
    ("/facilities/radius", {**RADIUS, "birth_date": "0001-01-01"}),
    ("/facilities/radius", {**RADIUS, "birth_date": "9999-12-31"}),
    ("/facilities/radius", {**RADIUS, "radius_m": 1e-300}),
    ("/facilities/radius", {**RADIUS, "radius_m": 50_000, "limit": 500, "offset": MAX_OFFSET}),
    ("/facilities/nearest", {"lat": 33, "lon": 124, "k": 500, "max_distance_m": 1e-300}),
    ("/facilities/area", {"district": "%", "dong": "_"}),
    ("/facilities/area", {"dong": "\\"}),
    ("/facilities/catchment", {"lat": 39, "lon": 132, "birth_date": "2026-02-28"}),
    ("/places/search", {"q": "% _ \\ ' \""}),
    ("/places/reverse", {"lat": 33, "lon": 124}),
    ("/isochrones", {"lat": LAT, "lon": LON, "minutes": 1e-300, "buffer_m": 500}),
])
def test_odd_but_well_formed_values_are_never_a_server_error(client: TestClient, path: str, params: dict) -> None:
    response = client.get(path, params=params)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _problem(response, response.status_code)


def test_open_at_outside_representable_korean_time_is_422(client: TestClient) -> None:
    # Found by hand while hardening: converting these to Korean time overflowed datetime (a 500 before).
    for moment in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        body = _problem(client.get("/facilities/radius", params={**RADIUS, "open_at": moment}))
        assert body["param"] == "open_at" and "years 1 to 9999" in body["detail"]
