"""/places/search and /places/reverse (offline PostGIS), the optional external geocoder (a local stub server,
no network), errors as problem+json; on the real data, reverse lookup against an independent 행정동 mapping
(Naver reverse geocoding by the khuda-data authors) and place search for real names and addresses."""

from __future__ import annotations

import csv
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.schemas.facilities import PlaceList, ReverseOut
from geo.errors import InvalidQuery
from geo.search.places import (
    ChainedGeocoder,
    NominatimGeocoder,
    PostgisGeocoder,
    geocoder_for,
    reverse_lookup,
    search_places,
)
from geo.settings import Settings
from tests.dbutil import client_on
from tests.search_data import BY_KEY, insert_search_fixture

PROBLEM = "application/problem+json"


@pytest.fixture()
def client(settings: Settings, engine: Engine, connection: Connection) -> Iterator[TestClient]:
    insert_search_fixture(connection)
    with client_on(settings, connection) as http:
        yield http


def _places(http: TestClient, q: str, limit: int = 10) -> list[dict]:
    response = http.get("/places/search", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    body = response.json()
    PlaceList.model_validate(body)
    return body["places"]


def test_search_districts_dongs_and_centres(client: TestClient) -> None:
    first = _places(client, "가상구")[0]
    assert (first["kind"], first["code"], first["name"]) == ("district", "99901", "가상구")
    assert first["bbox_4326"] == pytest.approx([130.87, 37.47, 130.93, 37.53])
    assert 130.87 <= first["lon"] <= 130.93 and 37.47 <= first["lat"] <= 37.53

    dongs = [p for p in _places(client, "가상1동") if p["kind"] == "admin_dong"]
    assert {(p["district_name"], p["code"]) for p in dongs} == {("가상구", "9990151000"), ("모의구", "9990251000")}
    # Every word must match: the 구 narrows the 동.
    narrowed = _places(client, "가상구 가상1동")
    assert [p["label"] for p in narrowed if p["kind"] == "admin_dong"] == ["가상구 가상1동"]

    centre = _places(client, "가상해님")[0]
    assert (centre["kind"], centre["code"], centre["name"]) == ("facility", "TEST-A", "가상해님어린이집")
    assert (centre["lon"], centre["lat"]) == pytest.approx(BY_KEY["A"].lonlat, abs=1e-7)
    assert isinstance(centre["facility_id"], int)


def test_search_address_fragments_and_escaping(client: TestClient) -> None:
    # Fixture addresses are "가상특별자치도 가상구 가상로 <ord(key)>": 65 is A.
    # A road-name address: its point first (a centre's, at that very address), then the centre itself.
    found = _places(client, "가상로 65")
    assert [(p["kind"], p["code"]) for p in found] == [("address", None), ("facility", "TEST-A")]
    assert found[0]["source"] == "centre_address" and (found[0]["lon"], found[0]["lat"]) == pytest.approx(
        BY_KEY["A"].lonlat, abs=1e-6)
    assert [p["code"] for p in _places(client, "가상100%")] == ["TEST-G"]
    assert _places(client, "%%%") == []
    # Closed and suspended centres are not places to go to.
    assert _places(client, "가상바다어린이집") == [] and _places(client, "가상꽃님") == []
    assert len(_places(client, "어린이집", limit=3)) == 3


def test_reverse(client: TestClient) -> None:
    lon, lat = BY_KEY["A"].lonlat  # east half
    response = client.get("/places/reverse", params={"lat": lat, "lon": lon})
    assert response.status_code == 200
    body = response.json()
    ReverseOut.model_validate(body)
    assert (body["district"]["code"], body["district"]["name"]) == ("99901", "가상구")
    assert (body["admin_dong"]["code"], body["admin_dong"]["label"]) == ("9990151000", "가상구 가상1동")
    assert body["legal_dong"]["name"] == "가상리"
    lon, lat = BY_KEY["G"].lonlat  # west half
    assert client.get("/places/reverse", params={"lat": lat, "lon": lon}).json()["admin_dong"]["name"] == "가상2동"


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/places/search", {"q": "   "}, 422, "q must not be empty"),
        ("/places/search", {"q": "가" * 101}, 422, "at most 100"),
        ("/places/search", {"q": "a b c d e f"}, 422, "at most 5 words"),
        ("/places/search", {"q": "가상구", "limit": 0}, 422, "limit"),
        ("/places/search", {"q": "가상구", "limit": 51}, 422, "limit"),
        ("/places/search", {}, 422, "q"),
        ("/places/reverse", {"lat": 126.97, "lon": 37.56}, 422, "swapped?"),
        ("/places/reverse", {"lat": -91, "lon": 127}, 422, "between -90 and 90"),
        ("/places/reverse", {"lat": 37.5, "lon": 181}, 422, "between -180 and 180"),
        ("/places/reverse", {"lat": 37.5, "lon": 121.0}, 422, "outside Korea"),
        ("/places/reverse", {"lat": 37.5}, 422, "lon"),
        # In Korea, but no loaded boundary there (the sea east of Ulleungdo).
        ("/places/reverse", {"lat": 37.3, "lon": 131.6}, 404, "no 구 or 동"),
    ],
)
def test_errors_are_problem_json(client: TestClient, path: str, params: dict, status: int, detail: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and detail in body["detail"] and body["instance"] == path


def test_search_places_in_geo(settings: Settings, engine: Engine, connection: Connection) -> None:
    insert_search_fixture(connection)
    places = search_places(connection, query=" 가상구  가상2동 ", limit=3, settings=settings)
    assert [(p.kind, p.label) for p in places][:1] == [("admin_dong", "가상구 가상2동")]
    small = settings.updated(DOLBOM_MAX_PAGE_LIMIT=2)
    with pytest.raises(InvalidQuery, match="between 1 and 2"):
        search_places(connection, query="가상구", limit=3, settings=small)


# --- the optional external geocoder (a local stub, no network) ----------------------------------------------


class _StubNominatim(BaseHTTPRequestHandler):
    queries: list[dict] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        type(self).queries.append(query)
        payload = [
            {"osm_id": 1, "lat": "37.5796", "lon": "126.9770", "name": "경복궁", "display_name": "경복궁, 종로구",
             "boundingbox": ["37.575", "37.584", "126.973", "126.980"]},
            {"osm_id": 2, "lat": "48.8584", "lon": "2.2945", "name": "Tour Eiffel", "display_name": "Paris"},
            {"osm_id": 3, "lat": "not a number", "lon": "127.0"},
        ]
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def stub_geocoder() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _StubNominatim)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _StubNominatim.queries = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_external_geocoder_tops_up_offline_results(settings: Settings, engine: Engine, connection: Connection,
                                                   stub_geocoder: str) -> None:
    insert_search_fixture(connection)
    configured = settings.updated(DOLBOM_GEOCODER_URL=stub_geocoder)
    assert isinstance(geocoder_for(connection, settings=configured), ChainedGeocoder)
    assert isinstance(geocoder_for(connection, settings=settings), PostgisGeocoder)
    with client_on(configured, connection) as http:
        places = _places(http, "가상해님", limit=5)
    assert [p["kind"] for p in places] == ["facility", "external"]  # Paris and the broken item are dropped
    external = places[1]
    assert (external["name"], external["source"]) == ("경복궁", stub_geocoder)
    assert external["bbox_4326"] == pytest.approx([126.973, 37.575, 126.980, 37.584])
    assert _StubNominatim.queries[0]["q"] == ["가상해님"] and _StubNominatim.queries[0]["limit"] == ["4"]


def test_unreachable_external_geocoder_yields_nothing(stub_geocoder: str) -> None:
    # A closed port: the error is logged, the search goes on with offline results only.
    assert NominatimGeocoder("http://127.0.0.1:1", timeout_s=0.5).search("경복궁") == []
    assert [p.name for p in NominatimGeocoder(stub_geocoder).search("경복궁", limit=1)] == ["경복궁"]


# --- the real Seoul data ------------------------------------------------------------------------------------


def _dong_key(name: str) -> str:
    # The mapping writes 상계6.7동 where the boundaries write 상계6·7동.
    return name.replace(".", "·")


@pytest.mark.slow
def test_reverse_agrees_with_an_independent_dong_mapping(seoul_engine: Engine, shared_data: Path) -> None:
    mapping_path = shared_data / "childcare" / "seoul_childcare_20250219_haengjeongdong_map.csv"
    with mapping_path.open(encoding="utf-8-sig") as fh:
        mapping = {row["어린이집코드"]: (row["시군구명"], row["행정동"]) for row in csv.DictReader(fh)}
    with seoul_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT code, ST_Y(geom_4326) AS lat, ST_X(geom_4326) AS lon FROM facilities
            WHERE geocode_quality = 'source' AND status IN ('active', 'reopened') ORDER BY code""")).all()
        sample = random.Random(20250219).sample([r for r in rows if r.code in mapping], 800)
        dong_ok = district_ok = 0
        misses: Counter[tuple[str, str | None]] = Counter()
        for row in sample:
            result = reverse_lookup(conn, lat=row.lat, lon=row.lon)
            gu, dong = mapping[row.code]
            got = result.admin_dong.name if result.admin_dong else None
            if got is not None and _dong_key(got) == _dong_key(dong):
                dong_ok += 1
            else:
                misses[(dong, got)] += 1
            district_ok += result.district is not None and result.district.name == gu
    # The mapping is from 2025 and the 행정동 boundaries from 2020 (e.g. 상일2동/강일동 were reorganised):
    # a small share differs for real reasons.
    assert dong_ok / len(sample) >= 0.96, misses.most_common(10)
    assert district_ok / len(sample) >= 0.99


@pytest.mark.slow
def test_place_search_finds_real_districts_dongs_names_and_addresses(settings: Settings,
                                                                     seoul_engine: Engine) -> None:
    with seoul_engine.connect() as conn:
        districts = conn.execute(text("SELECT code, name FROM districts WHERE code LIKE '11%'")).all()
        dongs = conn.execute(text("""
            SELECT COALESCE(a.mois_code, a.kostat_code) AS code, a.name, d.name AS district FROM admin_dongs a
            JOIN districts d ON d.code = a.district_code WHERE a.district_code LIKE '11%'""")).all()
        centres = conn.execute(text("""
            SELECT f.code, f.name, f.address FROM facilities f
            WHERE f.status IN ('active', 'reopened') AND f.address IS NOT NULL
              AND (SELECT count(*) FROM facilities g WHERE g.name = f.name AND g.status IN ('active', 'reopened')) = 1
            ORDER BY f.code""")).all()
    rng = random.Random(7)
    with TestClient(create_app(settings)) as http:
        for d in districts:
            first = _places(http, d.name)[0]
            assert (first["kind"], first["code"]) == ("district", d.code)
        for dong in rng.sample(list(dongs), 40):
            found = [p for p in _places(http, f"{dong.district} {dong.name}") if p["kind"] == "admin_dong"]
            assert found[0]["code"] == dong.code and found[0]["label"] == f"{dong.district} {dong.name}"
        for centre in rng.sample(list(centres), 40):
            assert centre.code in [p["code"] for p in _places(http, centre.name, limit=50)], centre.name
            # "<구> <road> <number>" from the road address, e.g. "마포구 월드컵북로 396".
            words = centre.address.split()
            fragment = " ".join(words[1:4])
            assert centre.code in [p["code"] for p in _places(http, fragment, limit=50)], fragment


def test_place_search_serves_addresses_buildings_and_latin_names(settings: Settings, seoul_engine: Engine) -> None:
    """The new kinds pass the response model: a road-name address (first, with its source), a building of the
    addresses, Latin names with ``label_latin``; a station name finds nothing (200, empty)."""
    with TestClient(create_app(settings)) as http:
        address = _places(http, "테헤란로 152")[0]
        assert (address["kind"], address["source"], address["label"]) == ("address", "interpolated",
                                                                         "강남구 테헤란로 152")
        assert any(p["kind"] == "building" for p in _places(http, "역삼럭키아파트"))
        gangnam = _places(http, "Gangnam")[0]
        assert (gangnam["kind"], gangnam["name"], gangnam["label_latin"]) == ("district", "강남구", "Gangnam-gu")
        assert _places(http, "강남역") == []
