"""GET /statistics (index, the page for browsers), /statistics/{table} as JSON, CSV and XLSX, and its chart
(Vega-Lite) on the real data; bad levels, districts and tables are problem responses."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Connection

from api.schemas.statistics import StatisticsIndex, StatisticsTableOut
from geo.settings import Settings
from geo.statistics.tables import DEFINITIONS
from tests.dbutil import client_on
from tests.problem_util import problem


@pytest.fixture()
def client(settings: Settings, seoul_engine: Any, connection: Connection) -> Iterator[TestClient]:
    with client_on(settings, connection) as http:
        yield http


def test_index_lists_every_table_with_its_links(client: TestClient) -> None:
    body = client.get("/statistics", params={"lang": "en"}).json()
    StatisticsIndex.model_validate(body)
    assert [t["id"] for t in body["tables"]] == list(DEFINITIONS)
    places = next(t for t in body["tables"] if t["id"] == "places")
    assert places["title"] == "Places, children and utilisation by type"
    assert {link["type"] for link in places["links"]} >= {"text/csv", "application/json"}
    waitlist = next(t for t in body["tables"] if t["id"] == "waitlist")
    assert waitlist["levels"] == ["city", "sigungu"]


def test_a_browser_gets_the_page(client: TestClient) -> None:
    page = client.get("/statistics", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="chart"' in page.text and "/static/statistics.js" in page.text


def test_table_json_csv_and_xlsx_agree(client: TestClient) -> None:
    params = {"level": "sigungu", "district": "11440"}
    body = client.get("/statistics/places", params=params).json()
    StatisticsTableOut.model_validate(body)
    assert body["rows"] and {r["district_name"] for r in body["rows"]} == {"마포구"}
    assert body["value_names"]["facility_type"]["national_public"] == "국공립"
    as_csv = client.get("/statistics/places", params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="dolbom-places-sigungu-11440.csv"' in as_csv.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][:3] == ["시군구 코드", "시군구", "유형"] and len(lines) == len(body["rows"]) + 1
    as_xlsx = client.get("/statistics/places", params={**params, "format": "xlsx", "lang": "en"})
    sheet = load_workbook(io.BytesIO(as_xlsx.content))["places"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("District code", "District", "Type")
    assert [r[5] for r in rows[1:]] == [r["enrolled"] for r in body["rows"]]


def test_chart_is_a_vega_lite_spec_with_the_tables_figures(client: TestClient) -> None:
    spec = client.get("/statistics/places/chart", params={"level": "city", "lang": "en"}).json()
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert spec["mark"]["type"] == "bar"
    values = next(iter(spec["datasets"].values())) if "datasets" in spec else spec["data"]["values"]
    table = client.get("/statistics/places", params={"level": "city"}).json()
    assert sum(v["capacity"] for v in values) == sum(r["capacity"] for r in table["rows"])
    assert "Public" in {v["facility_type"] for v in values}


@pytest.mark.parametrize(("path", "params", "status", "param"), [
    ("/statistics/nope", {}, 404, None),
    ("/statistics/places", {"level": "country"}, 422, "level"),
    ("/statistics/places", {"district": "mapo"}, 422, "district"),
    ("/statistics/waitlist", {"level": "dong"}, 422, "level"),
    ("/statistics/places", {"format": "pdf"}, 422, "format"),
])
def test_bad_requests_are_problems(client: TestClient, path: str, params: dict[str, str], status: int,
                                   param: str | None) -> None:
    body = problem(client.get(path, params=params), status)
    if param:
        assert param in str(body)


def test_the_district_and_dong_layers_carry_the_same_figures(client: TestClient) -> None:
    """GIS teams get the statistics with geometry: the OGC collections of 구 and 행정동 hold the 정원, 현원 and
    utilisation of the statistics tables."""
    table = client.get("/statistics/equipment", params={"level": "sigungu"}).json()  # centres per 구
    places = client.get("/statistics/places", params={"level": "sigungu"}).json()
    want: dict[str, list[int]] = {}
    for r in places["rows"]:
        acc = want.setdefault(r["district_code"], [0, 0])
        acc[0] += r["capacity"]
        acc[1] += r["enrolled"]
    items = client.get("/ogc/collections/districts/items", params={"limit": 100}).json()["features"]
    seoul = {f["id"]: f["properties"] for f in items if f["id"] in want}
    assert len(seoul) == len(table["rows"]) == 25
    for code, (capacity, enrolled) in want.items():
        got = seoul[code]
        assert (got["places"], got["enrolled"]) == (capacity, enrolled), code
        assert got["utilisation_pct"] == pytest.approx(round(enrolled * 100 / capacity, 1), abs=0.051)
    dongs = client.get("/ogc/collections/admin_dongs/items",
                       params={"limit": 1000, "filter": "district_code = '11440'"}).json()["features"]
    assert dongs
    dong_table = client.get("/statistics/places", params={"level": "dong", "district": "11440"}).json()
    by_dong: dict[str, int] = {}
    for r in dong_table["rows"]:
        by_dong[r["dong_code"]] = by_dong.get(r["dong_code"], 0) + r["enrolled"]
    assert {f["properties"]["code"]: f["properties"]["enrolled"] for f in dongs if f["properties"]["enrolled"]} \
        == {k: v for k, v in by_dong.items() if k and v}
