"""The app factory and /health against the real test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.settings import Settings


def test_health_reports_postgis(settings: Settings, engine) -> None:
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"]["postgis"].startswith("3.")
    assert isinstance(body["facilities"], int)


@pytest.mark.parametrize("path", [
    "/health",
    "/facilities/radius?lat=37.5563&lon=126.9220&radius_m=1000",
    "/facilities/nearest?lat=37.5563&lon=126.9220",
    "/facilities/area?district=마포구",
    "/facilities/catchment?lat=37.5563&lon=126.9220",
    "/places/search?q=마포",
    "/places/reverse?lat=37.5563&lon=126.9220",
])
def test_every_endpoint_is_503_problem_when_database_unreachable(tmp_path, path: str) -> None:
    bad = Settings(DATABASE_URL=f"postgresql://postgres@/nowhere?host={tmp_path}&port=1", DOLBOM_DB_TIMEOUT_S=1)
    with TestClient(create_app(bad), raise_server_exceptions=False) as client:
        response = client.get(path)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Database unavailable"


def test_unknown_route_is_problem_json(settings: Settings, engine) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
