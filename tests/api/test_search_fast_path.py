"""The search fast path (``api/search_fast_path.py``) answers exactly what the FastAPI routes answer: the same
status, the same body bytes and the same headers, for a large varied set of radius, nearest and area requests
on the real Seoul data (every format, every filter, paging and counts, gzip or not, every 구 by code and by name,
행정동 by both codes and by name, and error cases), sent once to an app with the fast path and once to an app
without it. A spy checks that the plain requests were answered by the fast path and the others by the app."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from starlette.datastructures import URL

from api.app import create_app
from api.search_fast_path import SearchFastPath, Unsure, parse_query
from geo.settings import Settings

POINTS = [(37.5665, 126.978), (37.4979, 127.0276), (37.6543, 127.0565), (37.5172, 126.8665), (37.5796, 126.977)]
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def clients(settings: Settings, seoul_engine: Engine) -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(create_app(settings), base_url="http://localhost") as fast, \
            TestClient(create_app(settings.updated(DOLBOM_SEARCH_FAST_PATH=False)),
                       base_url="http://localhost") as plain:
        yield fast, plain


@pytest.fixture()
def answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths (with query) the fast path answered itself."""
    seen: list[str] = []
    original = SearchFastPath._try

    async def spy(route: str, scope: Any) -> Any:
        response = await original(route, scope)
        if response is not None:
            seen.append(scope["path"] + "?" + scope["query_string"].decode())
        return response

    monkeypatch.setattr(SearchFastPath, "_try", staticmethod(spy))
    return seen


def fetch(http: TestClient, url: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers in order, and the body as sent (gzip undone: its header holds the time of day)."""
    with http.stream("GET", url, headers=headers, follow_redirects=False) as response:
        body = b"".join(response.iter_raw())
        pairs = [(k.lower(), v) for k, v in response.headers.multi_items()]
        if response.headers.get("content-encoding") == "gzip":
            assert len(body) == int(response.headers.get("content-length", len(body)))
            body = gzip.decompress(body)
        return response.status_code, pairs, body


def same(clients: tuple[TestClient, TestClient], url: str, headers: dict[str, str]) -> int:
    fast, plain = clients
    got, want = fetch(fast, url, headers), fetch(plain, url, headers)
    assert got == want, url
    return got[0]


def point_cases(rng: random.Random) -> list[str]:
    """Radius and nearest requests the fast path must answer, with every filter, format and paging option."""
    filters: list[dict[str, Any]] = [
        {}, {"service": "extended_hours"}, {"service": "extended_hours,holiday", "service_match": "any"},
        {"service": ["24h", "장애아통합"]}, {"type": "national_public"}, {"type": ["국공립", "민간"]},
        {"type": "home,private"}, {"status": "all"}, {"status": ["active", "suspended"]}, {"status": "정상"},
        {"age": 0}, {"age": 2, "min_free": 3}, {"age": 5, "min_free": 0}, {"has_bus": "true"},
        {"has_bus": "false"}, {"cctv": "true"}, {"name": "어린이집"}, {"name": "해"}, {"language": "zh,vi"},
        {"language": ["en"]}, {"evaluation_grade": "A"}, {"evaluation_grade": ["A", "B"]},
        {"type": "민간", "age": 1, "has_bus": "true", "service": "extended_hours"},
    ]
    cases: list[str] = []
    for i, f in enumerate(filters):
        lat, lon = POINTS[i % len(POINTS)]
        fmt = ["geojson", "json", "markers"][i % 3]
        radius = {"lat": lat, "lon": lon, "radius_m": rng.choice([300, 1000, 2500.5, 8000]), **f}
        if i % 3:
            radius["f"] = fmt
        if i % 4 == 1:
            radius |= {"limit": rng.choice([1, 5, 20]), "offset": rng.choice([0, 3, 10])}
        if i % 5 == 2:
            radius["count"] = "exact"
        cases.append("/facilities/radius?" + urlencode(radius, doseq=True))
        nearest = {"lat": lat, "lon": lon, **f}
        if i % 2:
            nearest |= {"k": rng.choice([1, 10, 37]), "offset": rng.choice([0, 10])}
        if i % 3 == 2:
            nearest["max_distance_m"] = rng.choice([500, 1500.25])
        if i % 4 == 3:
            nearest |= {"f": fmt, "count": "exact"}
        cases.append("/facilities/nearest?" + urlencode(nearest, doseq=True))
    # Paging through one result: first, middle and last pages (prev/next links, numberMatched when reached).
    for offset in (0, 10, 20, 30, 9990):
        cases.append(f"/facilities/radius?lat=37.5665&lon=126.978&radius_m=1500&limit=10&offset={offset}")
    cases.append("/facilities/nearest?lat=37.5665&lon=126.978&k=10&offset=20&count=exact")
    return cases


def area_cases(engine: Engine, rng: random.Random) -> list[str]:
    """Every 구 by code and by name, and one 행정동 in four by a code or its name (with its 구 when needed)."""
    with engine.connect() as conn:
        districts = conn.execute(text("SELECT code, name FROM districts ORDER BY code")).all()
        dongs = conn.execute(text("""
            SELECT a.mois_code, a.kostat_code, a.name, d.code AS district_code, d.name AS district_name,
                   count(*) OVER (PARTITION BY a.name) AS same_name
            FROM admin_dongs a JOIN districts d ON d.code = a.district_code ORDER BY a.id""")).all()
    assert len(districts) >= 25 and len(dongs) >= 400
    cases: list[str] = []
    for i, d in enumerate(districts):
        cases.append("/facilities/area?" + urlencode({"district": d.code, **({"f": "json"} if i % 2 else {})}))
        by_name: dict[str, Any] = {"district": d.name, "limit": rng.choice([5, 50, 200])}
        if i % 3 == 0:
            by_name |= {"lat": 37.55, "lon": 126.97, "f": "markers"}
        if i % 4 == 1:
            by_name |= {"offset": 5, "count": "exact", "type": "국공립"}
        cases.append("/facilities/area?" + urlencode(by_name))
    for i, d in enumerate(dongs[::4]):
        params: dict[str, Any] = {"dong": rng.choice([d.mois_code, d.kostat_code])}
        if i % 2:
            params["district"] = d.district_code
        if i % 5 == 0:
            params |= {"f": "json", "age": 1}
        cases.append("/facilities/area?" + urlencode(params))
        named: dict[str, Any] = {"dong": d.name, "limit": rng.choice([3, 50])}
        if d.same_name > 1:
            named["district"] = d.district_name
        if i % 3 == 0:
            named |= {"lat": 37.55, "lon": 126.97}
        cases.append("/facilities/area?" + urlencode(named))
    return cases


# Requests the app answers (errors, or parameters the fast path does not read exactly as FastAPI would).
APP_CASES = [
    "/facilities/radius?lat=37.5665&lon=126.978",  # missing radius_m
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=0",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=-5",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=999999999",
    "/facilities/radius?lat=abc&lon=126.978&radius_m=100",
    "/facilities/radius?lat=1e1&lon=126.978&radius_m=100",
    "/facilities/radius?lat=%2037.5665&lon=126.978&radius_m=100",
    "/facilities/radius?lat=126.978&lon=37.5665&radius_m=100",  # swapped: outside Korea
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&limit=0",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&limit=10001",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&limit=5000",  # over max_page_limit (domain)
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&offset=-1",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&offset=1000001",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&f=csv",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&count=maybe",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&service=teleport",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&service_match=some",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&age=6",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=100&age=2&birth_date=2024-01-01",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&birth_date=2024-05-01",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&open_at=2026-07-25T21:00",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&has_bus=1",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&cctv=yes",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&min_free=1001",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&name=",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&name=" + "가" * 401,
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&unknown=1",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&limit=5&limit=7",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&" + "&".join(["type=home"] * 21),
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&evaluation_grade=Z",
    "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&language=klingon",
    "/facilities/nearest?lat=37.5665",
    "/facilities/nearest?lat=37.5665&lon=126.978&k=0",
    "/facilities/nearest?lat=37.5665&lon=126.978&k=10&max_distance_m=0",
    "/facilities/nearest?lat=37.5665&lon=126.978&k=10&limit=5",  # limit is not nearest's
    "/facilities/area",
    "/facilities/area?district=없는구",
    "/facilities/area?dong=없는동",
    "/facilities/area?dong=신사동",  # 강남구 and 관악구: ambiguous
    "/facilities/area?dong=역삼동",  # a 법정동
    "/facilities/area?district=11680&lat=37.5",  # lat without lon
    "/facilities/area?district=11680&radius_m=5",
    "/facilities/catchment?lat=37.5665&lon=126.978",  # not a fast-path route
    "/facilities/radius/?lat=37.5665&lon=126.978&radius_m=100",
]


def test_the_fast_path_answers_what_the_routes_answer(clients: tuple[TestClient, TestClient], seoul_engine: Engine,
                                                       answered: list[str]) -> None:
    rng = random.Random(2024)
    plain_cases = point_cases(rng) + area_cases(seoul_engine, rng)
    statuses: dict[int, int] = {}
    for i, url in enumerate(plain_cases):
        status = same(clients, url, GZIP if i % 2 else IDENTITY)
        statuses[status] = statuses.get(status, 0) + 1
    assert statuses == {200: len(plain_cases)}
    assert len(answered) == len(plain_cases)  # every one answered by the fast path (the other app never is)
    answered.clear()
    for i, url in enumerate(APP_CASES):
        same(clients, url, GZIP if i % 2 else IDENTITY)
    assert answered == []


def test_a_successful_page_is_the_same_with_gzip_and_without(clients: tuple[TestClient, TestClient],
                                                              answered: list[str]) -> None:
    url = "/facilities/radius?lat=37.5665&lon=126.978&radius_m=3000&limit=200&f=json"
    fast, _ = clients
    with fast.stream("GET", url, headers=GZIP) as zipped:
        assert zipped.headers["content-encoding"] == "gzip"
    assert same(clients, url, GZIP) == 200 and same(clients, url, IDENTITY) == 200
    assert len(answered) == 3


def test_head_and_other_methods_go_to_the_app(clients: tuple[TestClient, TestClient], answered: list[str]) -> None:
    fast, plain = clients
    url = "/facilities/nearest?lat=37.5665&lon=126.978"
    for method in ("HEAD", "POST", "DELETE"):
        got, want = fast.request(method, url), plain.request(method, url)
        assert (got.status_code, got.content) == (want.status_code, want.content)
    assert answered == []


@pytest.mark.parametrize(("query", "expected"), [
    (b"lat=37.5&lon=127&radius_m=10", ({}, {"lat": 37.5, "lon": 127.0, "radius_m": 10.0})),
    (b"lat=37.5&lon=127&radius_m=10&service=a&service=b,c&age=0&has_bus=false",
     ({"service": ["a", "b,c"], "age": 0, "has_bus": False}, {"lat": 37.5, "lon": 127.0, "radius_m": 10.0})),
    (b"lat=37.5&lon=127&radius_m=10&name=%EA%B0%80+%EB%82%98",
     ({"name": "가 나"}, {"lat": 37.5, "lon": 127.0, "radius_m": 10.0})),
])
def test_parse_query_reads_what_fastapi_reads(query: bytes, expected: tuple[dict, dict]) -> None:
    assert parse_query("radius", query) == expected


@pytest.mark.parametrize("query", [
    b"lat=37.5&lon=127", b"lat=37.5&lon=127&radius_m=10&x=1", b"lat=37.5&lat=37.6&lon=127&radius_m=10",
    b"lat=37.5&lon=127&radius_m=10&age=06", b"lat=37.5&lon=127&radius_m=10&age=", b"lat=+37.5&lon=127&radius_m=10",
    b"lat=37.5&lon=127&radius_m=nan", b"lat=37.5&lon=127&radius_m=inf", b"lat=37.5&lon=127&radius_m=1_000",
    b"lat=37.5&lon=127&radius_m=10&has_bus=True", b"lat=37.5&lon=127&radius_m=10&k=5",
])
def test_parse_query_is_unsure_of_anything_else(query: bytes) -> None:
    with pytest.raises(Unsure):
        parse_query("radius", query)


def test_the_fast_path_can_be_turned_off() -> None:
    assert Settings(DATABASE_URL=None).server.search_fast_path is True
    assert Settings(DATABASE_URL=None).updated(DOLBOM_SEARCH_FAST_PATH=False).server.search_fast_path is False


@pytest.mark.parametrize("url", [
    "http://localhost/facilities/radius?lat=37.5&lon=127&radius_m=10",
    "http://localhost/facilities/radius?lat=37.5&lon=127&radius_m=10&offset=20&f=json&limit=10",
    "http://localhost/facilities/area?dong=%EC%84%9C%EA%B5%90%EB%8F%99&service=a&service=b&name=&x=1+2",
    "https://example.org:8443/api/facilities/nearest?k=10&offset=5&offset=7&f=markers#frag",
    "http://localhost/facilities/nearest",
])
def test_page_links_are_starlettes_include_query_params(url: str) -> None:
    from starlette.requests import Request as StarletteRequest

    from api.responses import page_links
    from geo.search.results import SearchPage

    scope_url = URL(url)
    scope = {"type": "http", "method": "GET", "scheme": scope_url.scheme, "server": (scope_url.hostname,
             scope_url.port or 80), "path": scope_url.path, "query_string": scope_url.query.encode(),
             "headers": [(b"host", scope_url.netloc.encode())], "root_path": ""}
    request = StarletteRequest(scope)
    page = SearchPage(features_json="[]", number_returned=10, has_more=True, number_matched=None, limit=10,
                      offset=3)  # prev: 0, next: 13
    hrefs = [link["href"] for link in page_links(request, page, "geojson")]  # type: ignore[arg-type]
    want = [str(request.url), str(request.url.include_query_params(f="json")),
            str(request.url.include_query_params(offset=0)), str(request.url.include_query_params(offset=13))]
    assert hrefs == want


def test_a_database_that_does_not_answer_gets_the_apps_503_from_the_fast_path(settings: Settings,
                                                                               answered: list[str]) -> None:
    unreachable = settings.updated(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", DOLBOM_DB_TIMEOUT_S=1)
    url = "/facilities/nearest?lat=37.5665&lon=126.978&k=3"
    with TestClient(create_app(unreachable)) as fast, \
            TestClient(create_app(unreachable.updated(DOLBOM_SEARCH_FAST_PATH=False))) as plain:
        got, want = fetch(fast, url, IDENTITY), fetch(plain, url, IDENTITY)
    assert got == want and got[0] == 503
    assert answered == ["/facilities/nearest?lat=37.5665&lon=126.978&k=3"]  # once: not waited for again
