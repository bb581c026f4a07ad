"""GET /isochrones against a throw-away database holding the real Jamsil road network and synthetic centres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from api.app import create_app
from geo.ingest.osm import import_osm_network
from geo.settings import Settings

JAMSIL = "seoul_songpa_jamsil_asanH_overpass_20241101_norelations.osm"
LAT, LON = 37.5133, 127.1000


@pytest.fixture(scope="module")
def api_engine(make_database, shared_data: Path) -> Engine:
    """Jamsil network plus centres on a 100 m grid (every 4th closed, every 3rd a 가정 centre)."""
    engine = make_database("isochrones_api")
    import_osm_network(engine, shared_data / "osm" / JAMSIL, network="jamsil")
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, geocode_quality, source, geom_4326)
            SELECT 'api-' || i || '-' || j, 'grid ' || i || ',' || j,
                   CASE WHEN (i + j) % 3 = 0 THEN 'home' ELSE 'national_public' END,
                   CASE WHEN (i + 2 * j) % 4 = 0 THEN 'closed' ELSE 'active' END, 'source', 'test',
                   ST_SetSRID(ST_MakePoint(127.085 + i * 0.00113, 37.500 + j * 0.0009), 4326)
            FROM generate_series(0, 35) i, generate_series(0, 35) j"""))
    return engine


@pytest.fixture(scope="module")
def client(api_engine: Engine) -> Iterator[TestClient]:
    settings = Settings(DATABASE_URL=api_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def centres(api_engine: Engine) -> list:
    with api_engine.connect() as conn:
        return conn.execute(text("SELECT id, facility_type, status, ST_X(geom_4326) AS lon, "
                                 "ST_Y(geom_4326) AS lat FROM facilities")).all()


def test_walking_isochrone_feature_collection(client: TestClient, centres: list) -> None:
    response = client.get("/isochrones", params={"lat": LAT, "lon": LON, "minutes": 10, "mode": "walk"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    polygon_feature, *facilities = body["features"]
    props = polygon_feature["properties"]
    assert props["kind"] == "isochrone" and props["mode"] == "walk" and props["network"] == "jamsil"
    assert polygon_feature["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert 0.1 < props["area_km2"] < 3.14 * 0.85**2  # within a circle of 800 m walk + buffer
    polygon = shape(polygon_feature["geometry"])
    assert polygon.is_valid
    shapely.prepare(polygon)
    expected = {c.id for c in centres if c.status == "active" and polygon.intersects(Point(c.lon, c.lat))}
    assert expected
    assert {f["id"] for f in facilities} == expected
    assert props["facilities_matched"] == len(expected)
    assert all(f["properties"]["kind"] == "facility" and f["geometry"]["type"] == "Point" for f in facilities)
    assert [f["properties"]["distance_m"] for f in facilities] == sorted(f["properties"]["distance_m"]
                                                                       for f in facilities)
    assert body["query"]["minutes"] == 10


def test_filters_and_limit(client: TestClient, centres: list) -> None:
    response = client.get("/isochrones", params={"lat": LAT, "lon": LON, "minutes": 15, "mode": "walk",
                                                 "type": "가정", "limit": 3})
    assert response.status_code == 200, response.text
    polygon_feature, *facilities = response.json()["features"]
    polygon = shape(polygon_feature["geometry"])
    homes = {c.id for c in centres if c.status == "active" and c.facility_type == "home"
             and polygon.intersects(Point(c.lon, c.lat))}
    assert polygon_feature["properties"]["facilities_matched"] == len(homes) > 3
    assert len(facilities) == 3 and {f["id"] for f in facilities} <= homes


def test_driving_reaches_farther_than_walking(client: TestClient) -> None:
    areas = {}
    for mode in ("walk", "drive"):
        response = client.get("/isochrones", params={"lat": LAT, "lon": LON, "minutes": 5, "mode": mode})
        assert response.status_code == 200, response.text
        areas[mode] = response.json()["features"][0]["properties"]["area_km2"]
    assert areas["drive"] > 2 * areas["walk"]


@pytest.mark.parametrize("params", [
    {"minutes": 0}, {"minutes": -1}, {"minutes": 61}, {"minutes": "ten"}, {"mode": "bike"}, {"lat": 91},
    {"lon": 181}, {"lat": None}, {"minutes": None}, {"type": "castle"}, {"buffer_m": 0}, {"limit": 0},
])
def test_invalid_queries_are_problem_json(client: TestClient, params: dict) -> None:
    query = {"lat": LAT, "lon": LON, "minutes": 10, "mode": "walk"} | params
    query = {k: v for k, v in query.items() if v is not None}
    response = client.get("/isochrones", params=query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 422


def test_outside_network_is_422_and_unknown_network_409(client: TestClient) -> None:
    outside = client.get("/isochrones", params={"lat": 37.5665, "lon": 126.9780, "minutes": 10})
    assert outside.status_code == 422
    assert "outside the road network" in outside.json()["detail"]
    missing = client.get("/isochrones", params={"lat": LAT, "lon": LON, "minutes": 10, "network": "busan"})
    assert missing.status_code == 409
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["available"] == ["jamsil"]
